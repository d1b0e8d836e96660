"""Agreement broken down by label (one-vs-rest) and by annotator (who drifts from the reference).

Per label, the ratings are binarised into "this label" / "any other label" and three numbers are
given beside the label's prevalence, so a high-agreement, low-kappa label (the kappa paradox) is
visible at once:

* specific agreement: given one rating of the label on an item, the chance that another rating of
  that item agrees, sum_i n_il (n_il - 1) / sum_i n_il (r_i - 1) (Uebersax's positive agreement);
* kappa: Fleiss' kappa of the binarised ratings (Fleiss 1971's per-category kappa);
* alpha: nominal Krippendorff's alpha of the binarised ratings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from flywheel.stats.kappa import PairAgreement, disagreement_weights, kappa_from_tables
from flywheel.stats.ratings import MISSING, Ratings, StrColumn
from flywheel.stats.stat import FloatArray, Stat, rounded

Reference: TypeAlias = StrColumn | Mapping[str, str | None]


@dataclass(frozen=True)
class LabelAgreement:
    """One label against all others: ``ratings`` of it, its ``prevalence`` (share of ratings)."""

    label: str
    ratings: int
    prevalence: float
    specific_agreement: Stat
    kappa: Stat
    alpha: Stat

    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        return {
            "label": self.label,
            "ratings": self.ratings,
            "prevalence": rounded(self.prevalence, digits),
            "specific_agreement": self.specific_agreement.to_dict(digits),
            "kappa": self.kappa.to_dict(digits),
            "alpha": self.alpha.to_dict(digits),
        }


def prevalence(ratings: Ratings) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Shape (k,) each: how many ratings each label got, and its share of all ratings."""
    patterns = ratings.patterns
    counts = patterns.freq @ patterns.counts
    total = counts.sum()
    share = counts / total if total else np.zeros(len(counts))
    return counts.astype(np.int64), share.astype(np.float64)


def per_label(ratings: Ratings) -> tuple[LabelAgreement, ...]:
    """One :class:`LabelAgreement` per label, in label order, all labels computed together."""
    patterns = ratings.patterns
    f = patterns.freq.astype(np.float64)
    x = patterns.counts.astype(np.float64)  # (P, k) ratings of the label
    r = patterns.raters.astype(np.float64)[:, None]
    y = r - x  # ratings of any other label
    pairable, rated = r >= 2, r >= 1
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_pairs = np.where(pairable, 1.0 / (r * (r - 1)), 0.0)
        inv_m1 = np.where(pairable, 1.0 / (r - 1), 0.0)
        specific_num = f @ (x * (x - 1) * pairable)
        specific_den = f @ (x * (r - 1) * pairable)
        p_a = (f @ ((x * (x - 1) + y * (y - 1)) * inv_pairs)) / (f @ pairable[:, 0])
        pi = (f @ np.where(rated, x / r, 0.0)) / (f @ rated[:, 0])
        p_e = pi**2 + (1 - pi) ** 2
        kappa = (p_a - p_e) / (1 - p_e)
        o11, o00, o01 = (f @ (u * v * inv_m1) for u, v in ((x, x - 1), (y, y - 1), (x, y)))
        n1, n0 = o11 + o01, o00 + o01
        alpha = 1 - (n1 + n0 - 1) * o01 / (n1 * n0)
    counts, share = prevalence(ratings)
    none_pairable = not np.any(pairable)
    out = []
    for j, label in enumerate(ratings.labels):
        if none_pairable or ratings.n_annotators < 2:
            why = "no item has ratings from two or more annotators."
            spec = kap = alp = Stat.undefined(why)
        else:
            spec = (
                Stat(float(specific_num[j] / specific_den[j]))
                if specific_den[j] > 0
                else Stat.undefined(f"no pairable item has a rating of {label!r}.")
            )
            if 0 < pi[j] < 1:
                kap = Stat(float(kappa[j]), observed=float(p_a[j]), expected=float(p_e[j]))
            else:
                kap = Stat.undefined(_one_sided(label, pi[j] == 0, "chance agreement is 1"))
            if n1[j] > 0 and n0[j] > 0:
                alp = Stat(float(alpha[j]))
            else:
                alp = Stat.undefined(_one_sided(label, n1[j] == 0, "expected disagreement is 0"))
        out.append(LabelAgreement(label, int(counts[j]), float(share[j]), spec, kap, alp))
    return tuple(out)


def _one_sided(label: str, never: bool, chance: str) -> str:
    if never:
        return f"no compared rating is {label!r}, so {chance} and one-vs-rest agreement is 0/0."
    return f"every compared rating is {label!r}, so {chance} and one-vs-rest agreement is 0/0."


@dataclass(frozen=True)
class AnnotatorAgreement:
    """One annotator: how much they rated, their label mix, and agreement with others/reference.

    ``mean_pairwise_kappa`` averages their defined Cohen's kappas with every other annotator;
    ``vs_reference`` is their agreement with the reference labels (None when none was given).
    """

    annotator: str
    ratings: int
    label_shares: Mapping[str, float]
    mean_pairwise_kappa: Stat
    vs_reference: PairAgreement | None

    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        return {
            "annotator": self.annotator,
            "ratings": self.ratings,
            "label_shares": {k: rounded(v, digits) for k, v in self.label_shares.items()},
            "mean_pairwise_kappa": self.mean_pairwise_kappa.to_dict(digits),
            "vs_reference": None
            if self.vs_reference is None
            else self.vs_reference.to_dict(digits),
        }


def reference_codes(ratings: Ratings, reference: Reference) -> npt.NDArray[np.int64]:
    """Shape (n_items,): reference label codes aligned with ``ratings.items`` (-1 = none).

    ``reference`` is a column of labels in item order, or a mapping item id -> label.
    """
    if isinstance(reference, Mapping):
        keys = pa.array(list(reference.keys()), type=pa.string())
        vals = pa.array(list(reference.values()), type=pa.string())
        where = pa.compute.index_in(pa.array(ratings.items, type=pa.string()), value_set=keys)
        column = vals.take(where)
    else:
        column = (
            pa.array(reference)
            if not isinstance(reference, pa.Array | pa.ChunkedArray)
            else reference
        )
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        column = column.cast(pa.string())
        if len(column) != ratings.n_items:
            raise ValueError(
                f"The reference has {len(column)} labels for {ratings.n_items} items; "
                "give one per item."
            )
    encoded = column.dictionary_encode()
    names = encoded.dictionary.to_pylist()
    unknown = sorted({n for n in names if n and n not in ratings.labels})
    if unknown:
        raise ValueError(
            f"Reference labels {unknown!r} are not among the labels {list(ratings.labels)!r}."
        )
    remap = np.array(
        [ratings.labels.index(n) if n else MISSING for n in names] + [MISSING], dtype=np.int64
    )
    idx = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return np.asarray(remap[idx], dtype=np.int64)


def per_annotator(
    ratings: Ratings,
    pairs: Sequence[PairAgreement],
    reference: Reference | None = None,
    *,
    weights: Sequence[str] = (),
) -> tuple[AnnotatorAgreement, ...]:
    """One :class:`AnnotatorAgreement` per annotator, in ``ratings.annotators`` order."""
    k = ratings.n_labels
    ref = None if reference is None else reference_codes(ratings, reference)
    out = []
    for j, name in enumerate(ratings.annotators):
        column = ratings.codes[:, j]
        mine = np.bincount(column[column >= 0], minlength=k)
        total = int(mine.sum())
        shares = {
            label: (float(mine[c] / total) if total else 0.0)
            for c, label in enumerate(ratings.labels)
        }
        kappas = [
            p.cohen_kappa.value
            for p in pairs
            if name in p.annotators and p.cohen_kappa.value is not None
        ]
        mean = (
            Stat(float(np.mean(kappas)))
            if kappas
            else Stat.undefined(f"{name!r} has no defined Cohen's kappa with anyone.")
        )
        vs = None if ref is None else _versus_reference(name, column, ref, ratings, weights)
        out.append(AnnotatorAgreement(name, total, shares, mean, vs))
    return tuple(out)


def _versus_reference(
    name: str,
    column: npt.NDArray[np.int32],
    ref: npt.NDArray[np.int64],
    ratings: Ratings,
    weights: Sequence[str],
) -> PairAgreement:
    k = ratings.n_labels
    both = (column >= 0) & (ref >= 0)
    table = (
        np.bincount(column[both].astype(np.int64) * k + ref[both], minlength=k * k)
        .reshape(k, k)
        .astype(np.float64)
    )
    n = int(table.sum())

    def stat(disagree: FloatArray, scott: bool = False) -> Stat:
        if n == 0:
            return Stat.undefined(f"{name!r} rated no item that has a reference label.")
        value, p_o, p_e = kappa_from_tables(table, disagree, scott=scott)
        if np.isnan(value):
            label = ratings.labels[int(np.argmax(table.sum(axis=0)))]
            return Stat.undefined(
                f"{name!r} and the reference use only {label!r}, so chance agreement is 1 "
                "and kappa is 0/0."
            )
        return Stat(float(value), observed=float(p_o), expected=float(p_e))

    nominal = disagreement_weights(k, None)
    agreement = Stat(float(np.trace(table) / n)) if n else stat(nominal)
    return PairAgreement(
        annotators=(name, "reference"),
        n=n,
        percent_agreement=agreement,
        cohen_kappa=stat(nominal),
        scott_pi=stat(nominal, scott=True),
        weighted={w: stat(disagreement_weights(k, w)) for w in weights},
        table=tuple(tuple(int(x) for x in row) for row in table),
    )
