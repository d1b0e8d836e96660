"""Seeded percentile bootstrap confidence intervals for kappa and alpha, resampling items.

Each statistic depends on the items only through how many items have each distinct row of codes
(:class:`~flywheel.stats.ratings.Patterns`). Drawing n items with replacement therefore gives
pattern counts ~ Multinomial(n, freq / n), so a replicate is one multinomial draw over the P
patterns, not n index draws, and a batch of B replicates is a (B, P) weight matrix fed to the same
kernels as the point estimate. The cost is O(B * P), independent of the number of items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from flywheel.stats.alpha import alpha_from_coincidence, coincidence
from flywheel.stats.kappa import (
    disagreement_weights,
    fleiss_from,
    kappa_from_tables,
    multi_batch,
    multi_features,
    pair_tables,
)
from flywheel.stats.ratings import Ratings
from flywheel.stats.stat import FloatArray, Interval, Stat

# Bound on the (replicates x patterns) weight matrix held at once, in float64 entries.
_CHUNK_ENTRIES = 4_000_000


def replicate_values(
    ratings: Ratings, *, levels: Sequence[str], replicates: int, seed: int
) -> dict[str, FloatArray]:
    """Shape (replicates,) per statistic: its value in each resample, NaN where undefined.

    Keys: "fleiss_kappa", "krippendorff_alpha.<level>" for each level, and "cohen_kappa" when
    there are exactly two annotators.
    """
    patterns = ratings.patterns
    n = ratings.n_items
    rng = np.random.default_rng(seed)
    p = patterns.freq / n
    features = multi_features(patterns)
    nominal = disagreement_weights(ratings.n_labels, None)
    keys = ["fleiss_kappa", *(f"krippendorff_alpha.{lv}" for lv in levels)]
    if ratings.n_annotators == 2:
        keys.append("cohen_kappa")
    out: dict[str, list[FloatArray]] = {key: [] for key in keys}
    chunk = max(1, min(replicates, _CHUNK_ENTRIES // max(len(p), 1)))
    done = 0
    while done < replicates:
        size = min(chunk, replicates - done)
        weights = rng.multinomial(n, p, size=size).astype(np.float64)  # (size, P)
        p_a, pi = multi_batch(weights, features)
        out["fleiss_kappa"].append(fleiss_from(p_a, pi)[0])
        o = coincidence(weights, patterns)
        for level in levels:
            out[f"krippendorff_alpha.{level}"].append(
                alpha_from_coincidence(o, level, ratings.values)[0]
            )
        if "cohen_kappa" in out:
            tables = pair_tables(weights, patterns, 0, 1, ratings.n_labels)
            out["cohen_kappa"].append(kappa_from_tables(tables, nominal)[0])
        done += size
    return {key: np.concatenate(parts) for key, parts in out.items()}


def intervals(
    ratings: Ratings,
    points: Mapping[str, Stat],
    *,
    levels: Sequence[str],
    replicates: int,
    seed: int,
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """Percentile intervals for the statistics of :func:`replicate_values`.

    ``points`` maps the same keys to the point estimates: an undefined point estimate gives an
    undefined interval with the same reason. ``replicates=0`` gives no intervals.
    """
    if replicates <= 0 or ratings.n_items == 0:
        return {}
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, not {confidence!r}.")
    values = replicate_values(ratings, levels=levels, replicates=replicates, seed=seed)
    tail = (1 - confidence) / 2
    out = {}
    for key, draws in values.items():
        point = points[key]
        defined = draws[np.isfinite(draws)]
        undefined = int(draws.size - defined.size)
        if point.undefined_reason is not None or defined.size == 0:
            reason = point.undefined_reason or "the statistic is undefined in every resample."
            out[key] = Interval(None, None, confidence, replicates, undefined, seed, reason)
            continue
        low, high = np.quantile(defined, [tail, 1 - tail])
        out[key] = Interval(float(low), float(high), confidence, replicates, undefined, seed)
    return out
