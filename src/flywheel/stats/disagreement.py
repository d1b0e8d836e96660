"""Where annotators disagree: the label confusion matrix and the label pairs confused most.

Data in, data out: the guidelines enter only as an optional mapping from a label pair to its
boundary examples (``Guidelines.boundary_pairs()`` has that shape), and the answer says whether
the guidelines already separate each confused pair.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flywheel.stats.kappa import PairAgreement
from flywheel.stats.ratings import Ratings

BoundaryPairs = Mapping[Any, Collection[Any]]


@dataclass(frozen=True)
class Confusion:
    """Label x label counts of rating pairs, summed over every annotator pair (i < j).

    ``matrix[c][k]`` counts items on which the earlier annotator of a pair (in
    ``Ratings.annotators`` order) gave ``labels[c]`` and the later one ``labels[k]``; for two
    annotators it is their contingency table. The diagonal is agreement.
    """

    labels: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "matrix": [list(row) for row in self.matrix],
            "rows": "label of the earlier annotator of each pair",
            "columns": "label of the later annotator of each pair",
        }


def confusion(ratings: Ratings, pairs: Sequence[PairAgreement]) -> Confusion:
    """Sum the pairs' contingency tables (see :func:`flywheel.stats.kappa.pairwise`)."""
    k = ratings.n_labels
    total = np.zeros((k, k), dtype=np.int64)
    for pair in pairs:
        total += np.array(pair.table, dtype=np.int64).reshape(k, k)
    return Confusion(ratings.labels, tuple(tuple(int(x) for x in row) for row in total))


@dataclass(frozen=True)
class ConfusedPair:
    """Two labels that annotators gave to the same item.

    ``count`` rating pairs disagreed this way on ``items`` items; ``examples`` are the first item
    ids (in ``Ratings.items`` order) where it happened. ``guideline_examples`` is how many boundary
    examples the guidelines hold for the pair, or None when no guidelines were given.
    """

    labels: tuple[str, str]
    count: int
    share: float
    items: int
    examples: tuple[str, ...]
    guideline_examples: int | None

    @property
    def has_boundary_example(self) -> bool | None:
        return None if self.guideline_examples is None else self.guideline_examples > 0

    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "count": self.count,
            "share": round(self.share, digits) + 0.0,
            "items": self.items,
            "examples": list(self.examples),
            "has_boundary_example": self.has_boundary_example,
            "guideline_examples": self.guideline_examples,
        }


def _boundary_counts(boundary_pairs: BoundaryPairs) -> dict[frozenset[str], int]:
    out: dict[frozenset[str], int] = {}
    for key, examples in boundary_pairs.items():
        if not isinstance(key, frozenset | set | tuple | list) or len(set(key)) != 2:
            raise ValueError(
                "A boundary pair key must hold two different labels, as frozenset({a, b}) "
                f"or (a, b), not {key!r}."
            )
        pair = frozenset(str(x) for x in key)
        out[pair] = out.get(pair, 0) + len(examples)
    return out


def confused_pairs(
    ratings: Ratings,
    *,
    top: int = 10,
    examples: int = 5,
    boundary_pairs: BoundaryPairs | None = None,
) -> tuple[ConfusedPair, ...]:
    """The ``top`` unordered label pairs with the most disagreeing rating pairs, most first.

    A rating pair is two ratings of one item by different annotators. Ties sort by label order.
    """
    patterns = ratings.patterns
    f = patterns.freq.astype(np.float64)
    counts = patterns.counts.astype(np.float64)  # (P, k)
    present = (counts > 0).astype(np.float64)
    pair_counts = counts.T @ (counts * f[:, None])  # (k, k): sum_i n_ic n_ik
    pair_items = present.T @ (present * f[:, None])  # (k, k): items holding both labels
    total = float(np.triu(pair_counts, 1).sum())
    c_idx, k_idx = np.triu_indices(ratings.n_labels, 1)
    found = pair_counts[c_idx, k_idx] > 0
    c_idx, k_idx = c_idx[found], k_idx[found]
    # lexsort: last key is primary; most disagreements first, then label order
    order = np.lexsort((k_idx, c_idx, -pair_counts[c_idx, k_idx]))[: max(top, 0)]
    known = None if boundary_pairs is None else _boundary_counts(boundary_pairs)
    out = []
    for i in order:
        c, k = int(c_idx[i]), int(k_idx[i])
        labels = (ratings.labels[c], ratings.labels[k])
        holds = (counts[:, c] > 0) & (counts[:, k] > 0)
        first = np.flatnonzero(holds[patterns.inverse])[: max(examples, 0)]
        count = round(float(pair_counts[c, k]))
        out.append(
            ConfusedPair(
                labels=labels,
                count=count,
                share=count / total,
                items=round(float(pair_items[c, k])),
                examples=tuple(ratings.items[j] for j in first),
                guideline_examples=None if known is None else known.get(frozenset(labels), 0),
            )
        )
    return tuple(out)
