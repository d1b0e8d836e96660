"""The kappa family: percent agreement, Cohen's kappa, Scott's pi, Fleiss' kappa, Gwet's AC1.

Every statistic is computed from weighted sums over the distinct rows of codes (see
:class:`~flywheel.stats.ratings.Patterns`). The ``*_batch`` kernels take pattern weights ``W`` of
shape (..., P): the pattern frequencies for the point estimate, or a (B, P) batch of bootstrap
resamples. Kernels return NaN where a statistic is 0/0; the public functions turn that into a
:class:`Stat` with a reason.

Definitions with missing data (varying raters per item), following Gwet (2014), *Handbook of
Inter-Rater Reliability*, 4th ed., ch. 2 (as in irrCAC ``fleiss.kappa.raw``):

* percent agreement p_a = mean over items with r_i >= 2 ratings of the share of agreeing rating
  pairs, sum_k n_ik (n_ik - 1) / (r_i (r_i - 1)); for two annotators this is the share of items
  both rated on which they agree;
* pi_k = mean over items with r_i >= 1 of n_ik / r_i (the label distribution);
* Fleiss' kappa = (p_a - p_e) / (1 - p_e) with p_e = sum_k pi_k^2. With the same number of raters
  on every item this is exactly Fleiss (1971) and statsmodels' ``fleiss_kappa``;
* Gwet's AC1 = (p_a - p_e) / (1 - p_e) with p_e = sum_k pi_k (1 - pi_k) / (q - 1), q = len(labels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from flywheel.stats.ratings import Patterns, Ratings
from flywheel.stats.stat import FloatArray, IntArray, Stat, finite, group_sum

WEIGHTS = ("linear", "quadratic")


def disagreement_weights(n_labels: int, weights: str | None) -> FloatArray:
    """Shape (k, k): Cohen's disagreement weights on label positions, scaled to a maximum of 1.

    None: 0 on the diagonal, 1 elsewhere; "linear": |i - j| / (k - 1); "quadratic": the square.
    Positions, not label values, as scikit-learn does with ``labels=ratings.labels``.
    """
    pos = np.arange(n_labels, dtype=np.float64)
    dist = np.abs(pos[:, None] - pos[None, :])
    if weights is None:
        return (dist > 0).astype(np.float64)
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', not {weights!r}.")
    scaled = dist / max(n_labels - 1, 1)
    return scaled if weights == "linear" else scaled**2


# -- kernels -----------------------------------------------------------------------------------


def pair_index(patterns: Patterns, a: int, b: int, n_labels: int) -> IntArray:
    """Shape (P,): the cell ``code_a * k + code_b`` of each pattern, -1 unless both rated."""
    ra, rb = patterns.rows[:, a], patterns.rows[:, b]
    return np.where((ra >= 0) & (rb >= 0), ra * n_labels + rb, -1)


def pair_tables(
    weights: FloatArray, patterns: Patterns, a: int, b: int, n_labels: int
) -> FloatArray:
    """Shape (..., k, k): contingency tables of annotator a (rows) against b (columns)."""
    flat = group_sum(weights, pair_index(patterns, a, b, n_labels), n_labels * n_labels)
    return flat.reshape(*flat.shape[:-1], n_labels, n_labels)


def kappa_from_tables(
    tables: FloatArray, disagree: FloatArray, *, scott: bool = False
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Cohen's kappa (or Scott's pi) of (..., k, k) tables: (value, p_o, p_e), NaN where 0/0.

    kappa = 1 - observed / expected weighted disagreement; p_o and p_e are the matching
    agreements 1 - disagreement, so unweighted kappa = (p_o - p_e) / (1 - p_e).
    """
    n = tables.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = tables / n[..., None, None]
        row, col = p.sum(axis=-1), p.sum(axis=-2)
        if scott:
            row = col = (row + col) / 2
        observed = (disagree * p).sum(axis=(-2, -1))
        expected = np.einsum("...i,ij,...j->...", row, disagree, col)
        value = 1.0 - observed / expected
    # expected is a sum of non-negative terms, so it is exactly 0 when chance agreement is total
    value = np.where((expected > 0) & (n > 0), value, np.nan)
    return value, 1.0 - observed, 1.0 - expected


def cohen_se(table: FloatArray, disagree: FloatArray, kappa: float) -> float:
    """Large-sample standard error of (weighted) Cohen's kappa, Fleiss, Cohen & Everitt (1969).

    ``table`` (k, k) counts. Same formula as SAS PROC FREQ and statsmodels ``cohens_kappa``.
    """
    n = table.sum()
    p = table / n
    row, col = p.sum(axis=1), p.sum(axis=0)
    agree = 1.0 - disagree
    p_e = float(row @ agree @ col)
    w_row = agree @ col  # mean agreement weight of row category i against b's distribution
    w_col = row @ agree
    term = (p * (agree - (w_row[:, None] + w_col[None, :]) * (1 - kappa)) ** 2).sum()
    var = (term - (kappa - p_e * (1 - kappa)) ** 2) / (n * (1 - p_e) ** 2)
    return float(np.sqrt(max(var, 0.0)))


def multi_features(patterns: Patterns) -> FloatArray:
    """Shape (P, 3 + k): per pattern [pairwise agreement share, pairable?, rated?, n_k / r]."""
    counts, raters = patterns.counts.astype(np.float64), patterns.raters.astype(np.float64)
    pairable, rated = raters >= 2, raters >= 1
    with np.errstate(divide="ignore", invalid="ignore"):
        agree = np.where(
            pairable, (counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1)), 0.0
        )
        share = np.where(rated[:, None], counts / raters[:, None], 0.0)
    return np.column_stack([agree, pairable, rated, share])


def multi_batch(weights: FloatArray, features: FloatArray) -> tuple[FloatArray, FloatArray]:
    """From pattern weights (..., P) and :func:`multi_features`: p_a (...) and pi (..., k)."""
    sums = weights @ features
    with np.errstate(divide="ignore", invalid="ignore"):
        p_a = sums[..., 0] / sums[..., 1]
        pi = sums[..., 3:] / sums[..., 2:3]
    return p_a, pi


def fleiss_from(p_a: FloatArray, pi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Fleiss' kappa and p_e; NaN when at most one label is used (p_e = 1)."""
    p_e = (pi * pi).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (p_a - p_e) / (1 - p_e)
    return np.where(np.count_nonzero(pi > 0, axis=-1) > 1, value, np.nan), p_e


def ac1_from(p_a: FloatArray, pi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Gwet's AC1 and its p_e over q = pi.shape[-1] labels; NaN when q < 2."""
    q = pi.shape[-1]
    if q < 2:
        nan = np.full(p_a.shape, np.nan)
        return nan, nan
    p_e = (pi * (1 - pi)).sum(axis=-1) / (q - 1)
    return (p_a - p_e) / (1 - p_e), p_e


# -- public API --------------------------------------------------------------------------------


def basic_reason(ratings: Ratings) -> str | None:
    """Why no agreement statistic can exist for these ratings, or None if one can."""
    if ratings.n_annotators == 0:
        return "there are no annotators."
    if ratings.n_annotators == 1:
        only = ratings.annotators[0]
        return f"there is only one annotator ({only!r}); agreement needs at least two."
    if not np.any(ratings.patterns.raters >= 2):
        return "no item has ratings from two or more annotators, so no two ratings can be compared."
    return None


def one_label_reason(label: str, stat: str, chance: str = "chance agreement is 1") -> str:
    return f"every rating compared is {label!r}, so {chance} and {stat} is 0/0."


def _freq(patterns: Patterns) -> FloatArray:
    return patterns.freq.astype(np.float64)


def percent_agreement(ratings: Ratings) -> Stat:
    """Mean share of agreeing rating pairs over items with two or more ratings."""
    reason = basic_reason(ratings)
    if reason:
        return Stat.undefined(reason)
    p_a, _ = multi_batch(_freq(ratings.patterns), multi_features(ratings.patterns))
    return Stat(float(p_a))


def fleiss_kappa(ratings: Ratings) -> Stat:
    """Fleiss' kappa, generalised to varying raters per item as in the module docstring."""
    return _multi(ratings, "fleiss")


def gwet_ac1(ratings: Ratings) -> Stat:
    """Gwet's AC1 (2008), with missing ratings as in the module docstring."""
    return _multi(ratings, "ac1")


def _multi(ratings: Ratings, which: str) -> Stat:
    reason = basic_reason(ratings)
    if reason:
        return Stat.undefined(reason)
    p_a, pi = multi_batch(_freq(ratings.patterns), multi_features(ratings.patterns))
    value, p_e = fleiss_from(p_a, pi) if which == "fleiss" else ac1_from(p_a, pi)
    if np.isnan(value):
        if which == "ac1":
            return Stat.undefined("there is only one label, and Gwet's AC1 needs at least two.")
        label = ratings.labels[int(np.argmax(pi))]
        return Stat.undefined(one_label_reason(label, "Fleiss' kappa"))
    return Stat(float(value), observed=float(p_a), expected=float(p_e))


def _pair_positions(
    ratings: Ratings, pair: Sequence[str] | None, stat: str
) -> tuple[int, int] | str:
    if pair is None:
        if ratings.n_annotators != 2:
            reason = basic_reason(ratings) if ratings.n_annotators < 2 else None
            return reason or (
                f"{stat} compares exactly two annotators and there are {ratings.n_annotators}; "
                "see 'pairs' for every pair and 'fleiss_kappa' for all of them at once."
            )
        return 0, 1
    a, b = pair
    for name in (a, b):
        if name not in ratings.annotators:
            raise ValueError(
                f"There is no annotator {name!r}; the annotators are {list(ratings.annotators)!r}."
            )
    if a == b:
        raise ValueError(f"A pair needs two different annotators, not {a!r} twice.")
    return ratings.annotators.index(a), ratings.annotators.index(b)


def cohen_kappa(
    ratings: Ratings, pair: Sequence[str] | None = None, *, weights: str | None = None
) -> Stat:
    """Cohen's kappa of two annotators over the items both rated (the only two, or ``pair``).

    ``weights``: None (unweighted), "linear" or "quadratic" on label positions.
    """
    disagree = disagreement_weights(ratings.n_labels, weights)
    where = _pair_positions(ratings, pair, "Cohen's kappa")
    if isinstance(where, str):
        return Stat.undefined(where)
    table = pair_tables(_freq(ratings.patterns), ratings.patterns, *where, ratings.n_labels)
    return _table_stat(table, disagree, ratings, where, scott=False)


def scott_pi(ratings: Ratings, pair: Sequence[str] | None = None) -> Stat:
    """Scott's pi of two annotators over the items both rated (the only two, or ``pair``)."""
    where = _pair_positions(ratings, pair, "Scott's pi")
    if isinstance(where, str):
        return Stat.undefined(where)
    table = pair_tables(_freq(ratings.patterns), ratings.patterns, *where, ratings.n_labels)
    return _table_stat(
        table, disagreement_weights(ratings.n_labels, None), ratings, where, scott=True
    )


def _table_stat(
    table: FloatArray,
    disagree: FloatArray,
    ratings: Ratings,
    where: tuple[int, int],
    *,
    scott: bool,
) -> Stat:
    value, p_o, p_e = kappa_from_tables(table, disagree, scott=scott)
    name = "Scott's pi" if scott else "Cohen's kappa"
    if table.sum() == 0:
        a, b = (ratings.annotators[i] for i in where)
        return Stat.undefined(f"annotators {a!r} and {b!r} rated no item in common.")
    if np.isnan(value):
        label = ratings.labels[int(np.argmax(table.sum(axis=0)))]
        return Stat.undefined(one_label_reason(label, name))
    se = None if scott else finite(cohen_se(table, disagree, float(value)))
    return Stat(float(value), observed=float(p_o), expected=float(p_e), se=se)


@dataclass(frozen=True)
class PairAgreement:
    """Agreement of one annotator pair over the ``n`` items both rated.

    ``table`` (k x k) counts items by the first annotator's label (row) and the second's (column).
    ``weighted`` maps "linear"/"quadratic" to weighted Cohen's kappa when asked for.
    """

    annotators: tuple[str, str]
    n: int
    percent_agreement: Stat
    cohen_kappa: Stat
    scott_pi: Stat
    weighted: Mapping[str, Stat]
    table: tuple[tuple[int, ...], ...]

    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        out: dict[str, Any] = {
            "annotators": list(self.annotators),
            "n": self.n,
            "percent_agreement": self.percent_agreement.to_dict(digits),
            "cohen_kappa": self.cohen_kappa.to_dict(digits),
            "scott_pi": self.scott_pi.to_dict(digits),
        }
        for name, stat in self.weighted.items():
            out[f"cohen_kappa_{name}"] = stat.to_dict(digits)
        return out


def pairwise(ratings: Ratings, *, weights: Sequence[str] = ()) -> tuple[PairAgreement, ...]:
    """Every annotator pair (i < j in ``ratings.annotators`` order), with weighted kappas."""
    patterns, k = ratings.patterns, ratings.n_labels
    nominal = disagreement_weights(k, None)
    weighted = {w: disagreement_weights(k, w) for w in weights}
    out = []
    for a, b in combinations(range(ratings.n_annotators), 2):
        table = pair_tables(_freq(patterns), patterns, a, b, k)
        n = round(float(table.sum()))
        if n == 0:
            names = f"{ratings.annotators[a]!r} and {ratings.annotators[b]!r}"
            agreement = Stat.undefined(f"annotators {names} rated no item in common.")
        else:
            agreement = Stat(float(np.trace(table) / table.sum()))
        out.append(
            PairAgreement(
                annotators=(ratings.annotators[a], ratings.annotators[b]),
                n=n,
                percent_agreement=agreement,
                cohen_kappa=_table_stat(table, nominal, ratings, (a, b), scott=False),
                scott_pi=_table_stat(table, nominal, ratings, (a, b), scott=True),
                weighted={
                    w: _table_stat(table, d, ratings, (a, b), scott=False)
                    for w, d in weighted.items()
                },
                table=tuple(tuple(round(float(x)) for x in row) for row in table),
            )
        )
    return tuple(out)


def mean_pairwise_kappa(pairs: Sequence[PairAgreement]) -> Stat:
    """Light's kappa: the mean of the pairs' Cohen's kappas that are defined."""
    values = [p.cohen_kappa.value for p in pairs if p.cohen_kappa.value is not None]
    if not values:
        return Stat.undefined("no annotator pair has a defined Cohen's kappa.")
    return Stat(float(np.mean(values)))
