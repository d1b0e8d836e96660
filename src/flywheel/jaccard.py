"""Jaccard similarity of record pairs, and ``verify``, which keeps the pairs reaching a threshold.

``estimated_jaccard`` is the fraction of equal signature values; ``exact_jaccard`` and
``exact_jaccard_pairs`` compare shingle-hash sets (``Shingles`` from ``flywheel.shingles``).
``verify`` keeps pairs whose estimate reaches the threshold; given the shingle sets, pairs whose
estimate is too close to the threshold to trust are decided by exact Jaccard instead.
``flywheel.lsh`` finds the candidate pairs to verify. ``flywheel.minhash`` re-exports the public
names.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable, Set
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from flywheel.lazy import lazy_module
from flywheel.minhash_params import (
    Float64Array,
    Int64Array,
    UInt32Array,
    _check_signatures,
)
from flywheel.shingles import Shingles

if TYPE_CHECKING:
    from flywheel import kernels
else:
    kernels = lazy_module("flywheel.kernels")  # numba loads when a kernel first runs

__all__ = [
    "DEFAULT_MARGIN_SD",
    "DEFAULT_THRESHOLD",
    "estimated_jaccard",
    "exact_jaccard",
    "exact_jaccard_pairs",
    "verify",
]

#: Jaccard similarity of shingle sets at or above which two records are near-duplicates. With the
#: default character 5-grams on BANKING77 queries (60 characters), one typo, inserted, deleted or
#: swapped word leaves a median Jaccard of 0.78 (quartiles 0.70-0.86), two edits 0.64; between
#: distinct queries, 262 pairs reach 0.8 (96% with the same intent) and 941 reach 0.7 (95%).
DEFAULT_THRESHOLD = 0.8
#: Exact verification covers estimates within this many standard errors of the threshold.
DEFAULT_MARGIN_SD = 4.0


def exact_jaccard(a: Set[Hashable], b: Set[Hashable]) -> float:
    """Jaccard similarity ``|a & b| / |a | b|`` of two shingle sets; 1.0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _exact(sh_a: Shingles, sh_b: Shingles, ia: Int64Array, ib: Int64Array) -> Float64Array:
    """Exact Jaccard of the shingle sets of ``sh_a`` record ``ia`` and ``sh_b`` record ``ib``
    (a compiled merge of the two sorted sets, ``flywheel.kernels``)."""
    return kernels.over_pairs(
        kernels.jaccard_into, (sh_a.hashes, sh_a.offsets, sh_b.hashes, sh_b.offsets), ia, ib
    )


def _exact_rows(
    sh_a: Shingles, sh_b: Shingles, pairs: Int64Array, rows: Int64Array
) -> Float64Array:
    return _exact(sh_a, sh_b, pairs[rows, 0], pairs[rows, 1])


def exact_jaccard_pairs(
    shingles: Shingles, pairs: npt.ArrayLike, other: Shingles | None = None
) -> Float64Array:
    """Exact Jaccard of the shingle-hash sets of each pair, vectorized.

    Args:
        shingles: from ``shingle_hashes`` or ``sketch``.
        pairs: ``(m, 2)`` record indices; column 1 indexes ``other`` when given.

    Returns:
        ``(m,)`` float64.
    """
    second = shingles if other is None else other
    idx = _check_pairs(pairs, shingles.offsets.size - 1, second.offsets.size - 1)
    return _exact(shingles, second, idx[:, 0], idx[:, 1])


def _agreements(
    sigs_a: UInt32Array, sigs_b: UInt32Array, ia: Int64Array, ib: Int64Array
) -> Float64Array:
    """Fraction of equal signature values of ``sigs_a[ia]`` and ``sigs_b[ib]``, ``(m,)``."""
    a = np.ascontiguousarray(sigs_a, dtype=np.uint32)
    b = np.ascontiguousarray(sigs_b, dtype=np.uint32)
    return kernels.over_pairs(kernels.agreements_into, (a, b), ia, ib)


def _check_shingles(shingles: Shingles, n: int, name: str) -> None:
    if shingles.offsets.size != n + 1:
        raise ValueError(
            f"{name} cover {shingles.offsets.size - 1} records but the signatures {n}; pass the "
            "shingles that sketch() returned with these signatures."
        )


def _check_pairs(pairs: npt.ArrayLike, n_first: int, n_second: int) -> Int64Array:
    arr = np.asarray(pairs)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.dtype.kind not in "iu":
        raise ValueError(
            f"Pairs must be an integer array of shape (m, 2), but got dtype {arr.dtype} and "
            f"shape {arr.shape}."
        )
    arr = arr.astype(np.int64)
    for column, n in ((0, n_first), (1, n_second)):
        if arr[:, column].min() < 0 or arr[:, column].max() >= n:
            raise ValueError(
                f"Pairs refer to rows outside the {n} signatures they are checked against; "
                "pass the signatures the pairs were computed from."
            )
    return arr


def estimated_jaccard(
    signatures: npt.ArrayLike, pairs: npt.ArrayLike, other: npt.ArrayLike | None = None
) -> Float64Array:
    """Estimated Jaccard of each pair: the fraction of equal signature values.

    Args:
        signatures: ``(n, num_perm)`` uint32.
        pairs: ``(m, 2)`` row indices; column 1 indexes ``other`` when given.
        other: ``(n2, num_perm)`` uint32 or None.

    Returns:
        ``(m,)`` float64 in ``[0, 1]``.
    """
    sigs = _check_signatures(signatures)
    second = sigs if other is None else _check_signatures(other, "other")
    if second.shape[1] != sigs.shape[1]:
        raise ValueError(
            f"Both signature arrays need the same num_perm, but they have {sigs.shape[1]} and "
            f"{second.shape[1]}."
        )
    idx = _check_pairs(pairs, sigs.shape[0], second.shape[0])
    return _agreements(sigs, second, idx[:, 0], idx[:, 1])


def _verified(
    estimate: Float64Array,
    threshold: float,
    num_perm: int,
    margin_sd: float,
    exact: Callable[[Int64Array], Float64Array] | None,
) -> npt.NDArray[np.bool_]:
    """Which pairs reach the threshold: by estimate, or by exact Jaccard where unsure.

    The estimate is a binomial proportion with standard error ``sqrt(J (1 - J) / num_perm)``
    (0.035 at J = 0.8 and 128 permutations), so pairs near the threshold land on either side by
    chance. With shingles, pairs whose estimate is within ``margin_sd`` standard errors of the
    threshold are decided exactly; beyond 4 a wrong side has a probability below about 1e-4.
    """
    keep = estimate >= threshold
    if exact is not None:
        margin = margin_sd * math.sqrt(threshold * (1 - threshold) / num_perm)
        unsure = np.flatnonzero(np.abs(estimate - threshold) <= margin)
        if unsure.size:
            keep[unsure] = exact(unsure) >= threshold
    return keep


def verify(
    signatures: npt.ArrayLike,
    pairs: npt.ArrayLike,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    shingles: Shingles | None = None,
    margin_sd: float = DEFAULT_MARGIN_SD,
) -> Int64Array:
    """Keep the pairs whose Jaccard reaches ``threshold``: ``(m, 2)`` -> ``(k, 2)`` int64.

    Without ``shingles`` the estimated Jaccard decides. With them (from ``sketch``), pairs whose
    estimate is within ``margin_sd`` standard errors of the threshold are decided by exact
    Jaccard of their shingle-hash sets; use this when pairs near the threshold matter.
    """
    sigs = _check_signatures(signatures)
    idx = _check_pairs(pairs, sigs.shape[0], sigs.shape[0])
    estimate = _agreements(sigs, sigs, idx[:, 0], idx[:, 1])
    exact = None
    if shingles is not None:
        _check_shingles(shingles, sigs.shape[0], "shingles")
        exact = functools.partial(_exact_rows, shingles, shingles, idx)
    return idx[_verified(estimate, threshold, sigs.shape[1], margin_sd, exact)]
