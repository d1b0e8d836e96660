"""``summarize``: every agreement statistic of a :class:`Ratings` in one frozen report.

Values are full-precision floats; :meth:`AgreementReport.to_dict` rounds them for output only.
The same ratings and seed always give the same dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flywheel.stats.alpha import LEVELS, check_level, krippendorff_alpha, left_out_items
from flywheel.stats.bootstrap import intervals
from flywheel.stats.breakdown import (
    AnnotatorAgreement,
    LabelAgreement,
    Reference,
    per_annotator,
    per_label,
    prevalence,
)
from flywheel.stats.disagreement import (
    BoundaryPairs,
    ConfusedPair,
    Confusion,
    confused_pairs,
    confusion,
)
from flywheel.stats.kappa import (
    WEIGHTS,
    PairAgreement,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    mean_pairwise_kappa,
    pairwise,
    percent_agreement,
    scott_pi,
)
from flywheel.stats.ratings import Ratings
from flywheel.stats.stat import Interval, Stat, rounded


@dataclass(frozen=True)
class AgreementReport:
    """All agreement statistics of one set of ratings; see :func:`summarize`.

    ``items`` counts every item, ``left_out_items`` those with fewer than two ratings (they
    carry no pairable information), ``ratings`` the ratings counted and ``repeats`` the repeated
    ratings dropped (the last rating of an annotator for an item counts).
    """

    items: int
    annotators: tuple[str, ...]
    labels: tuple[str, ...]
    level: str
    weights: tuple[str, ...]
    ratings: int
    repeats: int
    repeat_conflicts: int
    left_out_items: int
    percent_agreement: Stat
    cohen_kappa: Stat
    cohen_kappa_weighted: Mapping[str, Stat]
    mean_pairwise_kappa: Stat
    scott_pi: Stat
    fleiss_kappa: Stat
    krippendorff_alpha: Mapping[str, Stat]
    gwet_ac1: Stat
    pairs: tuple[PairAgreement, ...]
    per_label: tuple[LabelAgreement, ...]
    per_annotator: tuple[AnnotatorAgreement, ...]
    prevalence: Mapping[str, float]
    confusion: Confusion
    confidence_intervals: Mapping[str, Interval]
    disagreements: tuple[ConfusedPair, ...]
    bootstrap: int
    seed: int

    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        """JSON-ready plain data (str, int, float, bool, None, list, dict), floats rounded."""
        cis: dict[str, Any] = {}
        for key, interval in self.confidence_intervals.items():
            head, _, level = key.partition(".")
            if level:
                cis.setdefault(head, {})[level] = interval.to_dict(digits)
            else:
                cis[key] = interval.to_dict(digits)
        return {
            "items": self.items,
            "annotators": list(self.annotators),
            "labels": list(self.labels),
            "level": self.level,
            "weights": list(self.weights),
            "ratings": self.ratings,
            "repeats": self.repeats,
            "repeat_conflicts": self.repeat_conflicts,
            "left_out_items": self.left_out_items,
            "percent_agreement": self.percent_agreement.to_dict(digits),
            "cohen_kappa": self.cohen_kappa.to_dict(digits),
            "cohen_kappa_weighted": {
                k: v.to_dict(digits) for k, v in self.cohen_kappa_weighted.items()
            },
            "mean_pairwise_kappa": self.mean_pairwise_kappa.to_dict(digits),
            "scott_pi": self.scott_pi.to_dict(digits),
            "fleiss_kappa": self.fleiss_kappa.to_dict(digits),
            "krippendorff_alpha": {
                k: v.to_dict(digits) for k, v in self.krippendorff_alpha.items()
            },
            "gwet_ac1": self.gwet_ac1.to_dict(digits),
            "pairs": [p.to_dict(digits) for p in self.pairs],
            "per_label": [x.to_dict(digits) for x in self.per_label],
            "per_annotator": [x.to_dict(digits) for x in self.per_annotator],
            "prevalence": {k: rounded(v, digits) for k, v in self.prevalence.items()},
            "confusion": self.confusion.to_dict(),
            "confidence_intervals": cis,
            "disagreements": [d.to_dict(digits) for d in self.disagreements],
            "bootstrap": {"replicates": self.bootstrap, "seed": self.seed},
        }


def _weights(level: str, weights: str | None) -> tuple[str, ...]:
    if weights is None:
        return WEIGHTS if level != "nominal" else ()
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', not {weights!r}.")
    return (weights,)


def summarize(
    ratings: Ratings,
    *,
    level: str = "nominal",
    weights: str | None = None,
    reference: Reference | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    boundary_pairs: BoundaryPairs | None = None,
    top: int = 10,
) -> AgreementReport:
    """Every statistic of ``ratings``.

    ``level``: nominal, ordinal, interval or ratio; alpha is given at that level and at nominal.
    ``weights``: weighted Cohen's kappa to add per pair ("linear" or "quadratic"); by default
    both when the level is not nominal, none when it is. ``reference``: final labels, one per item
    (in item order) or a mapping item id -> label, to compare each annotator with.
    ``bootstrap``: resamples for 95% intervals (0: none), drawn from ``seed``.
    ``boundary_pairs``: guideline boundary examples per label pair, for the confused pairs.
    """
    check_level(level)
    if bootstrap < 0:
        raise ValueError(
            f"bootstrap must be 0 (no intervals) or a positive count, not {bootstrap}."
        )
    chosen = _weights(level, weights)
    levels = tuple(lv for lv in LEVELS if lv in ("nominal", level))
    pairs = pairwise(ratings, weights=chosen)
    cohen = cohen_kappa(ratings)
    if ratings.n_annotators == 2:
        cohen_weighted = dict(pairs[0].weighted)
    else:
        cohen_weighted = {w: Stat.undefined(str(cohen.undefined_reason)) for w in chosen}
    fleiss = fleiss_kappa(ratings)
    alphas = {lv: krippendorff_alpha(ratings, lv) for lv in levels}
    points = {"fleiss_kappa": fleiss, "cohen_kappa": cohen}
    points.update({f"krippendorff_alpha.{lv}": alphas[lv] for lv in levels})
    counts, shares = prevalence(ratings)
    return AgreementReport(
        items=ratings.n_items,
        annotators=ratings.annotators,
        labels=ratings.labels,
        level=level,
        weights=chosen,
        ratings=int(counts.sum()),
        repeats=ratings.repeats,
        repeat_conflicts=ratings.repeat_conflicts,
        left_out_items=left_out_items(ratings),
        percent_agreement=percent_agreement(ratings),
        cohen_kappa=cohen,
        cohen_kappa_weighted=cohen_weighted,
        mean_pairwise_kappa=mean_pairwise_kappa(pairs)
        if cohen.defined or ratings.n_annotators > 2
        else cohen,
        scott_pi=scott_pi(ratings),
        fleiss_kappa=fleiss,
        krippendorff_alpha=alphas,
        gwet_ac1=gwet_ac1(ratings),
        pairs=pairs,
        per_label=per_label(ratings),
        per_annotator=per_annotator(ratings, pairs, reference, weights=chosen),
        prevalence={label: float(s) for label, s in zip(ratings.labels, shares, strict=True)},
        confusion=confusion(ratings, pairs),
        confidence_intervals=intervals(
            ratings, points, levels=levels, replicates=bootstrap, seed=seed
        ),
        disagreements=confused_pairs(ratings, top=top, boundary_pairs=boundary_pairs),
        bootstrap=bootstrap,
        seed=seed,
    )
