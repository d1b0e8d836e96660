"""Krippendorff's alpha at the nominal, ordinal, interval and ratio levels, missing data allowed.

In the notation of Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": the
coincidence matrix o_ck = sum_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1) over units u with
m_u >= 2 values, marginals n_c = sum_k o_ck, n = sum_c n_c, and

    alpha = 1 - D_o / D_e = 1 - (n - 1) * sum_ck o_ck delta_ck / sum_ck n_c n_k delta_ck.

Units with fewer than two values are not pairable and drop out of o (reported as left out).
"""

from __future__ import annotations

import numpy as np

from flywheel.stats.kappa import basic_reason
from flywheel.stats.ratings import Patterns, Ratings
from flywheel.stats.stat import FloatArray, Stat

LEVELS = ("nominal", "ordinal", "interval", "ratio")


def check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}.")


def coincidence(weights: FloatArray, patterns: Patterns) -> FloatArray:
    """Shape (..., k, k): the coincidence matrix o for pattern weights of shape (..., P)."""
    counts = patterns.counts.astype(np.float64)
    raters = patterns.raters
    # 1 / (m_u - 1) for pairable units; units with one value contribute nothing
    scale = np.where(raters >= 2, 1.0 / np.maximum(raters - 1, 1), 0.0)
    scaled = counts * scale[:, None]  # (P, k)
    k = counts.shape[1]
    out = np.empty((*weights.shape[:-1], k, k), dtype=np.float64)
    for c in range(k):  # a loop over labels, never over items
        out[..., c, :] = (weights * scaled[:, c]) @ counts
    diag = np.arange(k)
    out[..., diag, diag] -= weights @ scaled
    return out


def distance(level: str, values: FloatArray, marginals: FloatArray) -> FloatArray:
    """Shape (..., k, k): squared distance delta^2_ck between labels (by position in ``labels``).

    ``values`` (k,) are the labels as numbers (interval, ratio); ``marginals`` (..., k) are the
    n_c, which the ordinal metric uses: (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2.
    """
    k = values.shape[0]
    if level == "nominal":
        return np.broadcast_to(1.0 - np.eye(k), (*marginals.shape[:-1], k, k)).copy()
    if level == "interval":
        d = (values[:, None] - values[None, :]) ** 2
        return np.broadcast_to(d, (*marginals.shape[:-1], k, k)).copy()
    if level == "ratio":
        total = values[:, None] + values[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(total == 0, 0.0, ((values[:, None] - values[None, :]) / total) ** 2)
        return np.broadcast_to(d, (*marginals.shape[:-1], k, k)).copy()
    check_level(level)
    cum = np.cumsum(marginals, axis=-1)
    lo = np.minimum.outer(np.arange(k), np.arange(k))
    hi = np.maximum.outer(np.arange(k), np.arange(k))
    between = cum[..., hi] - cum[..., lo] + marginals[..., lo]  # sum_{g=lo..hi} n_g
    half = (marginals[..., :, None] + marginals[..., None, :]) / 2
    return np.asarray((between - half) ** 2, dtype=np.float64)


def alpha_from_coincidence(
    o: FloatArray, level: str, values: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Alpha, D_o and D_e of (..., k, k) coincidence matrices; NaN where D_e is 0 or n is 0."""
    n_c = o.sum(axis=-1)
    n = n_c.sum(axis=-1)
    delta = distance(level, values, n_c)
    observed = (o * delta).sum(axis=(-2, -1))
    expected = np.einsum("...i,...ij,...j->...", n_c, delta, n_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 - (n - 1) * observed / expected
        d_o = observed / n
        d_e = expected / (n * (n - 1))
    # expected sums non-negative terms, so it is exactly 0 when only one value is paired
    alpha = np.where((expected > 0) & np.isfinite(expected), alpha, np.nan)
    return alpha, d_o, d_e


def krippendorff_alpha(ratings: Ratings, level: str = "nominal") -> Stat:
    """Krippendorff's alpha at ``level``; interval/ratio use :attr:`Ratings.values`."""
    check_level(level)
    reason = basic_reason(ratings)
    if reason:
        return Stat.undefined(reason)
    if level == "ratio" and np.any(ratings.values < 0):
        bad = ratings.labels[int(np.argmin(ratings.values))]
        return Stat.undefined(
            f"the ratio level needs non-negative label values, and label {bad!r} is negative."
        )
    o = coincidence(ratings.patterns.freq.astype(np.float64), ratings.patterns)
    alpha, d_o, d_e = alpha_from_coincidence(o, level, ratings.values)
    if np.isnan(alpha):
        label = ratings.labels[int(np.argmax(o.sum(axis=1)))]
        return Stat.undefined(
            f"every pairable rating is {label!r}, so expected disagreement is 0 and alpha is 0/0."
        )
    return Stat(float(alpha), observed=float(d_o), expected=float(d_e))


def left_out_items(ratings: Ratings) -> int:
    """How many items have fewer than two ratings and so carry no pairable information."""
    patterns = ratings.patterns
    return int(patterns.freq[patterns.raters < 2].sum())
