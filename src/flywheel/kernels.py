"""Compiled loops for the near-duplicate hot paths, where numpy has to make several passes.

MinHash applies ``num_perm`` permutations to every shingle and keeps each record's minimum;
numpy does it as multiply, add and ``minimum.reduceat`` over a ``(num_perm, block)`` temporary,
three passes through memory per shingle. One compiled loop (numba) keeps a record's 128 minima
in registers and cache instead: measured 6x faster on word 3-grams of 100k support replies
(0.77 s to 0.13 s, one core), and the same bits. Likewise the agreement count of signature pairs
and the intersection of sorted shingle sets, which numpy did by gathering whole rows and by
sorting tagged copies of both sets.

Every kernel releases the GIL (``nogil``), so callers run batches on threads, and is compiled
once per machine: numba caches the machine code beside this file (``__pycache__``), so a stage
pays the compilation (about a second) only on its first run after an install. These loops are
not Python loops per record: the interpreter is entered once per batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

from flywheel.minhash_params import THREADS

F = TypeVar("F", bound=Callable[..., Any])
UInt32Array = npt.NDArray[np.uint32]
Int64Array = npt.NDArray[np.int64]


def _compiled(fn: F) -> F:
    """``fn`` compiled to machine code without the GIL, cached between processes."""
    return cast(F, numba.njit(nogil=True, cache=True, boundscheck=False)(fn))


#: Pairs per thread below which ``over_pairs`` stays on one thread.
_PAIRS_PER_THREAD = 1 << 16


def over_pairs(
    kernel: Callable[..., None], data: tuple[Any, ...], ia: Int64Array, ib: Int64Array
) -> npt.NDArray[np.float64]:
    """``kernel(*data, ia, ib, out)`` over pairs, the pairs shared among threads (the kernels
    release the GIL); returns ``out``, ``(m,)`` float64."""
    ia = np.ascontiguousarray(ia, dtype=np.int64)
    ib = np.ascontiguousarray(ib, dtype=np.int64)
    out = np.empty(ia.size, dtype=np.float64)
    parts = min(THREADS, max(1, ia.size // _PAIRS_PER_THREAD))
    bounds = np.linspace(0, ia.size, parts + 1).astype(np.int64).tolist()
    spans = list(itertools.pairwise(bounds))

    def one(span: tuple[int, int]) -> None:
        lo, hi = span
        kernel(*data, ia[lo:hi], ib[lo:hi], out[lo:hi])

    if parts == 1:
        one(spans[0])
    else:
        with ThreadPoolExecutor(parts) as pool:
            list(pool.map(one, spans))
    return out


@numba.njit(nogil=True, cache=True, inline="always")
def _fmix64(h: np.uint64) -> np.uint64:
    """MurmurHash3's 64-bit finalizer (``flywheel.shingles._fmix64``, one value)."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@_compiled
def minhash_into(
    hashes: UInt32Array, offsets: Int64Array, a: UInt32Array, b: UInt32Array, out: UInt32Array
) -> None:
    """``out[i, p] = min over record i's shingles h of (a[p] * h + b[p]) mod 2**32``.

    ``out`` is ``(n, num_perm)``; a record without shingles gets ``2**32 - 1`` everywhere (the
    callers give every record at least one shingle).
    """
    n, num_perm = offsets.size - 1, a.size
    for i in range(n):
        row = out[i]
        for p in range(num_perm):
            row[p] = np.uint32(0xFFFFFFFF)
        for s in range(offsets[i], offsets[i + 1]):
            h = hashes[s]
            for p in range(num_perm):
                # uint32 * uint32 widens to 64 bits here: truncate after each step (mod 2**32).
                v = np.uint32(np.uint32(a[p] * h) + b[p])
                if v < row[p]:
                    row[p] = v


@_compiled
def agreements_into(
    sigs_a: UInt32Array,
    sigs_b: UInt32Array,
    ia: Int64Array,
    ib: Int64Array,
    out: npt.NDArray[np.float64],
) -> None:
    """``out[m]``: the fraction of equal values of ``sigs_a[ia[m]]`` and ``sigs_b[ib[m]]``."""
    num_perm = sigs_a.shape[1]
    for m in range(ia.size):
        x, y = sigs_a[ia[m]], sigs_b[ib[m]]
        same = 0
        for p in range(num_perm):
            same += x[p] == y[p]
        out[m] = same / num_perm


@_compiled
def jaccard_into(
    hashes_a: UInt32Array,
    offsets_a: Int64Array,
    hashes_b: UInt32Array,
    offsets_b: Int64Array,
    ia: Int64Array,
    ib: Int64Array,
    out: npt.NDArray[np.float64],
) -> None:
    """``out[m]``: Jaccard of set ``ia[m]`` of ``a`` and set ``ib[m]`` of ``b``, each sorted and
    distinct (``Shingles``); 1.0 for two empty sets."""
    for m in range(ia.size):
        i, end_i = offsets_a[ia[m]], offsets_a[ia[m] + 1]
        j, end_j = offsets_b[ib[m]], offsets_b[ib[m] + 1]
        size = (end_i - i) + (end_j - j)
        shared = 0
        while i < end_i and j < end_j:
            x, y = hashes_a[i], hashes_b[j]
            if x == y:
                shared += 1
                i += 1
                j += 1
            elif x < y:
                i += 1
            else:
                j += 1
        union = size - shared
        out[m] = shared / union if union else 1.0


@_compiled
def _unit_starts(data: npt.NDArray[np.uint8], lo: int, hi: int, words: bool, at: Int64Array) -> int:
    """Byte offsets where the units (words or UTF-8 characters) of ``data[lo:hi]`` start, into
    ``at``; returns how many. Normalized text has single spaces and none at the ends."""
    count = 0
    for j in range(lo, hi):
        c = data[j]
        if (j == lo or data[j - 1] == 0x20) if words else (c & 0xC0) != 0x80:
            at[count] = j
            count += 1
    return count


@_compiled
def shingles_into(
    data: npt.NDArray[np.uint8],
    offsets: Int64Array,
    words: bool,
    k: int,
    base: np.uint64,
    base_inverse: np.uint64,
    out_offsets: Int64Array,
) -> UInt32Array:
    """Shingle hashes of normalized UTF-8 texts (``flywheel.shingles._shingles``, same bits).

    A shingle is ``k`` consecutive units; a record of fewer units is one shingle of its whole
    text (the empty text hashes to 0). Its hash is the polynomial hash of its bytes,
    ``sum((byte + 1) * base**position) mod 2**64``, through MurmurHash3's fmix64, top 32 bits.
    ``out_offsets`` (``n + 1``) receives each record's range of the result.
    """
    n = offsets.size - 1
    longest = 0
    for i in range(n):
        longest = max(longest, offsets[i + 1] - offsets[i])
    starts = np.empty(longest + 1, dtype=np.int64)
    total = 0
    for i in range(n):
        units = _unit_starts(data, offsets[i], offsets[i + 1], words, starts)
        total += max(units - k + 1, 1)
    # Per record, prefix[j] is the hash of its first j bytes; a shingle's hash is then
    # (prefix[hi] - prefix[lo]) * base**-lo, two multiplications whatever its length.
    powers = np.empty(longest + 1, dtype=np.uint64)
    inverse = np.empty(longest + 1, dtype=np.uint64)
    powers[0] = inverse[0] = 1
    for j in range(longest):
        powers[j + 1] = powers[j] * base
        inverse[j + 1] = inverse[j] * base_inverse
    prefix = np.empty(longest + 1, dtype=np.uint64)
    out = np.empty(total, dtype=np.uint32)
    at = 0
    out_offsets[0] = 0
    for i in range(n):
        lo, hi = offsets[i], offsets[i + 1]
        prefix[0] = 0
        for j in range(hi - lo):
            prefix[j + 1] = prefix[j] + (np.uint64(data[lo + j]) + np.uint64(1)) * powers[j]
        units = _unit_starts(data, lo, hi, words, starts)
        starts[units] = hi + 1 if words else hi  # a word ends one byte before the next starts
        for u in range(max(units - k + 1, 1)):
            first, last = lo, hi  # fewer than k units: the whole text
            if units >= k:
                first = starts[u]
                last = starts[u + k] - 1 if words else starts[u + k]
            h = _fmix64((prefix[last - lo] - prefix[first - lo]) * inverse[first - lo])
            out[at] = np.uint32(h >> np.uint64(32))
            at += 1
        out_offsets[i + 1] = at
    return out


@_compiled
def normalize_ascii_into(
    data: npt.NDArray[np.uint8],
    offsets: Int64Array,
    out: npt.NDArray[np.uint8],
    out_offsets: Int64Array,
) -> int:
    """ASCII lowercasing and whitespace collapsing of each record, into ``out``; returns its
    length. Runs of whitespace bytes (``str.isspace`` below 0x80: 0x09-0x0d, 0x1c-0x20) become
    one space between words and vanish at the ends; bytes from 0x80 up are copied as they are
    (``flywheel.shingles._normalized_utf8`` sends non-ASCII rows through Python first)."""
    at = 0
    out_offsets[0] = 0
    for i in range(offsets.size - 1):
        pending = False  # whitespace seen since the last word byte of this record
        start = at
        for j in range(offsets[i], offsets[i + 1]):
            c = data[j]
            if (9 <= c <= 13) or (28 <= c <= 32):
                pending = True
                continue
            if pending and at > start:
                out[at] = 0x20
                at += 1
            pending = False
            out[at] = c + 32 if 65 <= c <= 90 else c
            at += 1
        out_offsets[i + 1] = at
    return at


@numba.njit(nogil=True, cache=True, inline="always")
def _band_key(
    sigs: UInt32Array,
    i: int,
    b: int,
    rows: int,
    coefficients: npt.NDArray[np.uint64],
    salts: npt.NDArray[np.uint64],
) -> np.uint64:
    """Record ``i``'s key of band ``b``: ``fmix64(sum(row value * coefficient) ^ salt)``."""
    h = np.uint64(0)
    for r in range(rows):
        h += np.uint64(sigs[i, b * rows + r]) * coefficients[r]
    return _fmix64(h ^ salts[b])


@_compiled
def band_keys_into(
    sigs: UInt32Array,
    rows: int,
    coefficients: npt.NDArray[np.uint64],
    salts: npt.NDArray[np.uint64],
    weights: npt.NDArray[np.uint64],
    keys: npt.NDArray[np.uint64],
    whole: npt.NDArray[np.uint64],
) -> None:
    """LSH band keys (``flywheel.lsh._band_keys``, same bits): per record and band,
    ``fmix64(sum(row value * coefficient) ^ salt)``; per record, ``fmix64`` of the band keys'
    weighted sum. All arithmetic modulo 2**64."""
    n, bands = keys.shape
    for i in range(n):
        total = np.uint64(0)
        for b in range(bands):
            keys[i, b] = _band_key(sigs, i, b, rows, coefficients, salts)
            total += keys[i, b] * weights[b]
        whole[i] = _fmix64(total)


@_compiled
def band_hits_into(
    sigs: UInt32Array,
    rows: int,
    coefficients: npt.NDArray[np.uint64],
    salts: npt.NDArray[np.uint64],
    weights: npt.NDArray[np.uint64],
    seen: npt.NDArray[np.bool_],
    shift: int,
    low: np.uint64,
    base: int,
    hit_index: Int64Array,
    hit_key: npt.NDArray[np.uint64],
    whole: npt.NDArray[np.uint64],
) -> int:
    """``band_keys_into``'s keys (same bits), keeping only those whose top bits ``seen`` marks
    (``seen[key >> shift]``): their flat index ``(base + record) * bands + band`` into
    ``hit_index`` and the key without its ``low`` bits into ``hit_key``; returns how many.
    ``whole[i]`` is set for the records with a hit. Matching a round against a million stored
    signatures this way skips the nine million keys that cannot match, where computing them all
    and then looking them up cost 0.6-0.9 s."""
    n, bands = sigs.shape[0], salts.size
    count = 0
    for i in range(n):
        total = np.uint64(0)
        hit = False
        for b in range(bands):
            key = _band_key(sigs, i, b, rows, coefficients, salts)
            total += key * weights[b]
            if seen[key >> np.uint64(shift)]:
                hit_index[count] = (base + i) * bands + b
                hit_key[count] = key & ~low
                count += 1
                hit = True
        if hit:
            whole[i] = _fmix64(total)
    return count
