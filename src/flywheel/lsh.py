"""LSH banding over MinHash signatures: candidate pairs, and the near-duplicate searches.

``lsh_params`` picks bands and rows for a Jaccard threshold; ``candidate_pairs`` gives the
records equal on all rows of at least one band. ``near_duplicates`` verifies the candidates
among one set of signatures with ``flywheel.jaccard.verify``; ``match_against`` finds the
verified pairs between new records and stored older ones. ``flywheel.minhash`` re-exports the
public names.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flywheel.jaccard import (
    DEFAULT_MARGIN_SD,
    DEFAULT_THRESHOLD,
    _agreements,
    _check_shingles,
    _exact_rows,
    _verified,
    verify,
)
from flywheel.lazy import lazy_module
from flywheel.minhash_params import (
    _U64,
    THREADS,
    Int64Array,
    UInt32Array,
    UInt64Array,
    _check_signatures,
    _expand,
)
from flywheel.shingles import Shingles, _fmix64, _stream

if TYPE_CHECKING:
    from flywheel import kernels
else:
    kernels = lazy_module("flywheel.kernels")  # numba loads when a kernel first runs

__all__ = [
    "DEFAULT_LSH_WEIGHTS",
    "DEFAULT_MAX_BUCKET",
    "candidate_pairs",
    "lsh_params",
    "match_against",
    "near_duplicates",
]

#: LSH buckets up to this size yield all their pairs; larger ones only pairs within this window.
DEFAULT_MAX_BUCKET = 256
#: LSH (false positive, false negative) weights: a missed pair is lost for good, while a false
#: candidate only costs one verification, so misses weigh more (datasketch uses 0.5, 0.5).
DEFAULT_LSH_WEIGHTS = (0.05, 0.95)


def lsh_params(
    threshold: float,
    num_perm: int,
    false_positive_weight: float = DEFAULT_LSH_WEIGHTS[0],
    false_negative_weight: float = DEFAULT_LSH_WEIGHTS[1],
) -> tuple[int, int]:
    """Bands ``b`` and rows ``r`` (``b*r <= num_perm``) minimizing weighted FP + FN probability.

    The same objective as datasketch's ``_optimal_param``: a pair of Jaccard ``s`` becomes a
    candidate with probability ``1 - (1 - s**r)**b``; the false positive probability is its
    integral over ``[0, threshold]``, the false negative probability the integral of the
    complement over ``[threshold, 1]``. Both integrands are polynomials of degree ``b*r``, so
    Gauss-Legendre quadrature with ``num_perm//2 + 1`` nodes is exact (datasketch integrates
    numerically with scipy, which is not a dependency here). Ties go to the smallest ``b``, then
    the smallest ``r``, as in datasketch.

    Returns:
        ``(bands, rows)``.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"The Jaccard threshold must be in (0, 1], but it is {threshold}.")
    if type(num_perm) is not int or num_perm < 1:
        raise ValueError(f"num_perm must be a positive integer, but it is {num_perm!r}.")
    if min(false_positive_weight, false_negative_weight) < 0 or not (
        false_positive_weight + false_negative_weight > 0
    ):
        raise ValueError(
            "The false positive and false negative weights must be non-negative and not both "
            f"zero, but they are {false_positive_weight} and {false_negative_weight}."
        )
    return _lsh_params(
        float(threshold), num_perm, float(false_positive_weight), float(false_negative_weight)
    )


@functools.lru_cache(maxsize=256)
def _lsh_params(
    threshold: float, num_perm: int, fp_weight: float, fn_weight: float
) -> tuple[int, int]:
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    below = threshold * (nodes + 1) / 2  # nodes mapped onto [0, threshold]
    above = threshold + (1 - threshold) * (nodes + 1) / 2  # ... onto [threshold, 1]
    best, best_error = (1, 1), math.inf
    for bands in range(1, num_perm + 1):  # a loop over b only; r and the nodes are vectorized
        rows = np.arange(1, num_perm // bands + 1, dtype=np.float64)[:, None]
        fp = threshold / 2 * (weights * (1 - (1 - below**rows) ** bands)).sum(axis=1)
        fn = (1 - threshold) / 2 * (weights * (1 - above**rows) ** bands).sum(axis=1)
        error = fp * fp_weight + fn * fn_weight
        i = int(np.argmin(error))
        if error[i] < best_error:
            best, best_error = (bands, i + 1), float(error[i])
    return best


def _check_bands(num_perm: int, bands: int, rows: int, max_bucket: int) -> None:
    if bands < 1 or rows < 1 or bands * rows > num_perm:
        raise ValueError(
            f"bands={bands} and rows={rows} need bands*rows <= num_perm={num_perm} and both at "
            "least 1; take them from lsh_params(threshold, num_perm)."
        )
    if max_bucket < 2:
        raise ValueError(f"max_bucket must be at least 2, but it is {max_bucket}.")


def _band_constants(bands: int, rows: int) -> tuple[UInt64Array, UInt64Array, UInt64Array]:
    """Independent random constants per row, per band and for the whole-signature key
    (sharing one stream made a row constant equal a band salt, and keys collide across bands)."""
    coefficients = _fmix64(_stream(0x5BD1E995, rows)) | _U64(1)
    salts = _fmix64(_stream(0x27D4EB2F, bands))
    weights = _fmix64(_stream(0x165667B1, bands)) | _U64(1)
    return coefficients, salts, weights


def _band_keys(sigs: UInt32Array, bands: int, rows: int) -> tuple[UInt64Array, UInt64Array]:
    """One uint64 key per record and band ``(n, bands)``, and a whole-signature key ``(n,)``.

    A key is fmix64 of a random linear combination of the band's rows, with the band index
    mixed in so that all bands can share one sort. Unequal band rows share a key only by
    accident (about one pair in 2**40 after ``_buckets`` keeps the high bits); ``verify``
    removes such pairs like any other false candidate.
    """
    n = sigs.shape[0]
    coefficients, salts, weights = _band_constants(bands, rows)
    keys = np.empty((n, bands), dtype=np.uint64)
    whole = np.empty(n, dtype=np.uint64)
    # One compiled pass (flywheel.kernels); numpy took a uint64 copy of the signatures, an
    # einsum and three fmix64 passes, 2.4 s of the dedup stage at a million records.
    kernels.band_keys_into(
        np.ascontiguousarray(sigs, dtype=np.uint32), rows, coefficients, salts, weights, keys, whole
    )
    return keys, whole


def _index_bits(total: int, bands: int) -> np.uint64:
    """The mask of the low key bits ``_buckets`` packs a flat index among ``total`` band keys
    into (the key's high bits stay for grouping)."""
    bits = max(int(total - 1).bit_length(), 1)
    if bits > 40:
        raise ValueError(
            f"{total // bands} records x {bands} bands is too many for one LSH pass; match the "
            "records in chunks with match_against."
        )
    return _U64((1 << bits) - 1)


def _buckets(
    keys: UInt64Array,
    whole: UInt64Array,
    bands: int,
    max_bucket: int,
    index: UInt64Array | None = None,
    total: int | None = None,
) -> tuple[Int64Array, Int64Array, Int64Array]:
    """Group band keys into buckets of size >= 2.

    Args:
        keys: ``(n, bands)`` from ``_band_keys``; ``whole``: ``(n,)``.

    Returns:
        ``(order, starts, sizes)``: ``order`` ``(n*bands,)`` lists flat indices
        ``record*bands + band`` by bucket; bucket ``g`` of ``starts``/``sizes`` ``(g,)`` occupies
        ``order[starts[g] : starts[g] + sizes[g]]``. Within a bucket records are in index order,
        except in buckets above ``max_bucket``, ordered by ``whole`` so equal signatures are
        adjacent. With ``index``, ``keys`` is flat and holds only the entries ``index`` (flat
        indices among ``total``): the buckets, and their order, are those of the full set for
        every bucket all of whose entries are given.
    """
    total = keys.size if total is None else total
    # The flat index in the low bits of the key: one in-place np.sort (SIMD for uint64) gives
    # both groups and order; measured 2-3x faster than argsort and 7x faster than lexsort.
    low = _index_bits(total, bands)
    flat = np.arange(total, dtype=np.uint64) if index is None else index
    packed = (keys.reshape(-1) & ~low) | flat
    packed.sort()
    order = (packed & low).astype(np.int64)
    high = packed & ~low  # the key bits: equal within a bucket
    boundary = np.flatnonzero(high[1:] != high[:-1]) + 1
    starts = np.concatenate(([0], boundary)) if len(packed) else np.zeros(0, dtype=np.int64)
    sizes = np.diff(np.append(starts, len(packed)))
    multi = sizes > 1
    starts, sizes = starts[multi], sizes[multi]
    big = np.flatnonzero(sizes > max_bucket)
    if big.size:
        group, position = _expand(starts[big], sizes[big])
        members = order[position]
        order[position] = members[np.lexsort((members, whole[members // bands], group))]
    return order, starts, sizes


def _unique_pairs(i: Int64Array, j: Int64Array, n_second: int) -> Int64Array:
    """Distinct pairs ``(i, j)`` sorted, shape ``(m, 2)`` int64."""
    codes = np.sort(i * np.int64(n_second) + j)
    if codes.size:
        codes = codes[np.append(True, codes[1:] != codes[:-1])]
    return np.stack((codes // n_second, codes % n_second), axis=1).astype(np.int64)


def candidate_pairs(
    signatures: npt.ArrayLike, bands: int, rows: int, *, max_bucket: int = DEFAULT_MAX_BUCKET
) -> Int64Array:
    """Pairs of records equal on every row of at least one band (plus the rare pair whose band
    keys collide by chance, which ``verify`` removes).

    Within each band, equal band keys form a bucket. A bucket of up to ``max_bucket`` records
    yields all its pairs. A larger bucket (many copies of one template or text) would yield
    quadratically many, so its records, ordered by whole-signature key, pair only with the next
    ``max_bucket - 1``: output stays O(n * max_bucket) per band and identical signatures, being
    adjacent in that order, still end up connected for ``clusters``.

    Args:
        signatures: ``(n, num_perm)`` uint32.
        bands, rows: from ``lsh_params``; the first ``bands*rows`` columns are used.
        max_bucket: see above.

    Returns:
        ``(m, 2)`` int64, each row ``i < j``, rows sorted, no repeats.
    """
    sigs = _check_signatures(signatures)
    _check_bands(sigs.shape[1], bands, rows, max_bucket)
    order, starts, sizes = _buckets(*_band_keys(sigs, bands, rows), bands, max_bucket)
    return _bucket_pairs(order, starts, sizes, bands, max_bucket, sigs.shape[0])


def _bucket_pairs(
    order: Int64Array,
    starts: Int64Array,
    sizes: Int64Array,
    bands: int,
    max_bucket: int,
    n: int,
) -> Int64Array:
    """The pairs of the buckets ``starts``/``sizes`` of ``order`` (from ``_buckets``): each
    record with the next ``max_bucket - 1`` of its bucket, so all of a bucket up to that size."""
    group, position = _expand(starts, sizes)
    count = np.minimum(starts[group] + sizes[group] - position - 1, max_bucket - 1)
    source, partner = _expand(position + 1, count)
    first = order[position[source]] // bands
    second = order[partner] // bands
    lo, hi = np.minimum(first, second), np.maximum(first, second)
    keep = lo != hi  # a record meets itself only through a key collision across bands
    return _unique_pairs(lo[keep], hi[keep], n)


def small_bucket_pairs(
    signatures: npt.ArrayLike, bands: int, rows: int, *, max_bucket: int = DEFAULT_MAX_BUCKET
) -> tuple[Int64Array, Int64Array]:
    """``candidate_pairs`` split by bucket size: every pair of the buckets of at most
    ``max_bucket`` records, and the records of the larger buckets (sorted, distinct), whose
    pairs depend on which records share the bucket (see ``candidate_pairs``)."""
    sigs = _check_signatures(signatures)
    _check_bands(sigs.shape[1], bands, rows, max_bucket)
    order, starts, sizes = _buckets(*_band_keys(sigs, bands, rows), bands, max_bucket)
    small = sizes <= max_bucket
    _, position = _expand(starts[~small], sizes[~small])
    big_records = np.unique(order[position] // bands).astype(np.int64)
    pairs = _bucket_pairs(order, starts[small], sizes[small], bands, max_bucket, sigs.shape[0])
    return pairs, big_records


def near_duplicates(
    signatures: npt.ArrayLike,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    shingles: Shingles | None = None,
    max_bucket: int = DEFAULT_MAX_BUCKET,
    margin_sd: float = DEFAULT_MARGIN_SD,
) -> Int64Array:
    """All near-duplicate pairs: ``verify(candidate_pairs(...))`` with bands and rows from
    ``lsh_params(threshold, num_perm)``.

    Args:
        signatures: ``(n, num_perm)`` uint32.
        shingles: from ``sketch``, for exact Jaccard near the threshold (see ``verify``).

    Returns:
        ``(m, 2)`` int64, each row ``i < j``, rows sorted.
    """
    sigs = _check_signatures(signatures)
    bands, rows = lsh_params(threshold, sigs.shape[1])
    candidates = candidate_pairs(sigs, bands, rows, max_bucket=max_bucket)
    return verify(sigs, candidates, threshold, shingles=shingles, margin_sd=margin_sd)


def cross_candidates(
    new_signatures: npt.ArrayLike,
    old_signatures: npt.ArrayLike | list[npt.ArrayLike],
    bands: int,
    rows: int,
    *,
    max_bucket: int = DEFAULT_MAX_BUCKET,
) -> Int64Array:
    """Candidate pairs ``(new_index, old_index)`` between new and old records, unverified: the
    cross pairs ``candidate_pairs`` gives over ``old`` followed by ``new`` (see
    ``match_against``, which verifies them). ``old_signatures`` may be a list of matrices,
    the old records in turn (a store's memory-mapped segments, not copied into one)."""
    new = _check_signatures(new_signatures, "new_signatures")
    pieces = old_signatures if isinstance(old_signatures, list) else [old_signatures]
    olds = [_check_signatures(piece, "old_signatures") for piece in pieces]
    n_old, n_new = sum(old.shape[0] for old in olds), new.shape[0]
    total = (n_old + n_new) * bands
    low = _index_bits(total, bands)
    new_keys, new_whole = _band_keys(new, bands, rows)
    # Only the buckets that hold a new record can pair it: their old entries, found by a hash
    # lookup, are sorted with the new ones instead of every old band key (a sort of 9 million
    # keys for a million old records, where a round adds a few thousand).
    new_high = new_keys.reshape(-1) & ~low
    # A bitmap of the new keys' top 24 bits (keys are fmix64 outputs, so uniform) passes about
    # one old key in a hundred to the exact hash lookup; the old keys it stops are never kept.
    seen = np.zeros(1 << _SEEN_BITS, dtype=bool)
    seen[new_high >> _U64(64 - _SEEN_BITS)] = True
    maybe, maybe_high, old_whole = _old_hits(olds, bands, rows, seen, low)
    shared = pc.is_in(pa.array(maybe_high), value_set=pa.array(np.unique(new_high)))
    kept = shared.to_numpy(zero_copy_only=False)
    hit, old_high = maybe[kept].astype(np.uint64), maybe_high[kept]
    order, starts, sizes = _buckets(
        np.concatenate((old_high, new_high)),
        np.concatenate((old_whole, new_whole)),
        bands,
        max_bucket,
        index=np.concatenate((hit, np.arange(n_old * bands, total, dtype=np.uint64))),
        total=total,
    )
    # Same buckets and order as candidate_pairs over old + new; each new record pairs with the
    # old records of its bucket that are within max_bucket - 1 positions of it.
    group, position = _expand(starts, sizes)
    record = order[position] // bands
    is_old = record < n_old
    old_positions, new_positions = position[is_old], position[~is_old]
    new_group = group[~is_old]
    window = max_bucket - 1
    lo = np.maximum(starts[new_group], new_positions - window)
    hi = np.minimum(starts[new_group] + sizes[new_group], new_positions + window + 1)
    first = np.searchsorted(old_positions, lo)
    count = np.searchsorted(old_positions, hi) - first
    source, partner = _expand(first, count)
    new_idx = order[new_positions[source]] // bands - n_old
    old_idx = order[old_positions[partner]] // bands
    return _unique_pairs(new_idx, old_idx, max(n_old, 1))


_SEEN_BITS = 24  # the bitmap's key bits: 16 MB, above the flat index bits (at most 40)
_HIT_CHUNK = 1 << 16  # old records per kernel call (its output buffers hold them all)


def _old_hits(
    olds: list[UInt32Array], bands: int, rows: int, seen: npt.NDArray[np.bool_], low: np.uint64
) -> tuple[Int64Array, UInt64Array, UInt64Array]:
    """The old band keys ``seen`` lets through: their flat indices among all old records' band
    keys, those keys without their ``low`` bits, and every old record's whole-signature key (set
    for the records with such a key). One compiled pass over chunks of records on threads, the
    nine million keys of a million records never held at once (``kernels.band_hits_into``)."""
    coefficients, salts, weights = _band_constants(bands, rows)
    whole = np.zeros(sum(len(old) for old in olds), dtype=np.uint64)
    jobs, base = [], 0
    for old in olds:
        jobs += [
            (old, s, min(s + _HIT_CHUNK, len(old)), base) for s in range(0, len(old), _HIT_CHUNK)
        ]
        base += len(old)

    def one(job: tuple[UInt32Array, int, int, int]) -> tuple[Int64Array, UInt64Array]:
        old, start, stop, at = job
        index = np.empty((stop - start) * bands, dtype=np.int64)
        key = np.empty((stop - start) * bands, dtype=np.uint64)
        found = kernels.band_hits_into(
            np.ascontiguousarray(old[start:stop], dtype=np.uint32),
            rows,
            coefficients,
            salts,
            weights,
            seen,
            64 - _SEEN_BITS,
            low,
            at + start,
            index,
            key,
            whole[at + start : at + stop],
        )
        return index[:found], key[:found]

    with ThreadPoolExecutor(THREADS) as pool:
        parts = list(pool.map(one, jobs))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64), whole
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), whole


def match_against(
    new_signatures: npt.ArrayLike,
    old_signatures: npt.ArrayLike,
    bands: int,
    rows: int,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    new_shingles: Shingles | None = None,
    old_shingles: Shingles | None = None,
    max_bucket: int = DEFAULT_MAX_BUCKET,
    margin_sd: float = DEFAULT_MARGIN_SD,
) -> Int64Array:
    """Verified near-duplicate pairs between new records and stored older ones.

    Gives the same cross pairs as ``verify(candidate_pairs(...))`` over ``old`` followed by
    ``new``: buckets and their order are the same, and in a bucket above ``max_bucket`` a new
    record meets the old records within ``max_bucket - 1`` positions of it. Pairs among new
    records are not included; get them with ``near_duplicates(new_signatures)``. Exact
    verification near the threshold (see ``verify``) needs the shingles of both sides.

    Args:
        new_signatures: ``(n_new, num_perm)`` uint32.
        old_signatures: ``(n_old, num_perm)`` uint32, same parameters.
        bands, rows: from ``lsh_params``.

    Returns:
        ``(m, 2)`` int64 rows ``(new_index, old_index)``, sorted, no repeats.
    """
    new = _check_signatures(new_signatures, "new_signatures")
    old = _check_signatures(old_signatures, "old_signatures")
    if new.shape[1] != old.shape[1]:
        raise ValueError(
            f"New signatures have num_perm={new.shape[1]} but old ones {old.shape[1]}; compute "
            "both with the same MinHashParams."
        )
    _check_bands(new.shape[1], bands, rows, max_bucket)
    if (new_shingles is None) != (old_shingles is None):
        raise ValueError(
            "Exact verification needs the shingles of both the new and the old records; pass "
            "both new_shingles and old_shingles, or neither."
        )
    n_old = old.shape[0]
    pairs = cross_candidates(new, old, bands, rows, max_bucket=max_bucket)
    estimate = _agreements(new, old, pairs[:, 0], pairs[:, 1])
    exact = None
    if new_shingles is not None and old_shingles is not None:
        _check_shingles(new_shingles, new.shape[0], "new_shingles")
        _check_shingles(old_shingles, n_old, "old_shingles")
        exact = functools.partial(_exact_rows, new_shingles, old_shingles, pairs)
    return pairs[_verified(estimate, threshold, new.shape[1], margin_sd, exact)]
