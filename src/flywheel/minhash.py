"""Near-duplicate detection: MinHash signatures, LSH banding, verification, persistence.

The pipeline, each step vectorized over a batch of records (no Python loop per record):

1. ``normalize``: NFKC, casefold, whitespace runs to one space, ends trimmed (the same text
   ``flywheel.ingest.normalize`` judges exact duplicates on).
2. shingles: character k-grams (``shingle="char"``) or word k-grams (``"word"``) of the normalized
   UTF-8 text, each hashed to uint32 from a polynomial prefix hash of its bytes.
3. ``signatures``: ``num_perm`` affine permutations ``a*x + b mod 2**32`` of every shingle hash,
   minimum per record, shape ``(n, num_perm)`` uint32. ``sketch`` also keeps the shingle sets.
4. ``candidate_pairs``: records equal on all ``rows`` values of at least one of ``bands`` bands;
   ``lsh_params`` picks bands and rows for a Jaccard threshold.
5. ``verify``: keep pairs whose estimated Jaccard (fraction of equal signature values) reaches
   the threshold; given the shingle sets, pairs whose estimate is too close to the threshold to
   trust are decided by exact Jaccard instead. ``near_duplicates`` chains 4 and 5.

``clusters`` (from ``flywheel.unionfind``) turns pairs into connected components.
``match_against`` matches a new round against the signatures of earlier rounds, which
``save_signatures`` and ``load_signatures`` keep in Parquet.

Signatures are comparable only when every field of ``MinHashParams`` matches; ``SCHEME_VERSION``
names the normalization, shingle hashing and permutation scheme and changes whenever any of them
would change a signature. ``load_signatures`` refuses a file made with other parameters.

Errors::

    ValueError               bad arguments (shapes, ranges, nulls)
    ConfigError
    └── SignatureParamsError stored signatures come from other MinHashParams (also ValueError)
    InputError
    └── SignatureFileError   a file is not a readable signature file (also ValueError)
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
import unicodedata
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel.errors import ConfigError, InputError
from flywheel.unionfind import clusters

__all__ = [
    "DEFAULT_LSH_WEIGHTS",
    "DEFAULT_MARGIN_SD",
    "DEFAULT_MAX_BUCKET",
    "DEFAULT_PARAMS",
    "DEFAULT_THRESHOLD",
    "SCHEME_VERSION",
    "MinHashParams",
    "Shingles",
    "SignatureFileError",
    "SignatureParamsError",
    "candidate_pairs",
    "clusters",
    "estimated_jaccard",
    "exact_jaccard",
    "exact_jaccard_pairs",
    "load_signatures",
    "lsh_params",
    "match_against",
    "near_duplicates",
    "normalize",
    "save_signatures",
    "shingle_hashes",
    "shingle_sets",
    "signatures",
    "sketch",
    "verify",
]

#: Names everything between raw text and signature values: normalization, shingle hash, seeding
#: and permutation family. Bump it whenever any of them changes an output value.
SCHEME_VERSION = "flywheel-minhash-1"
#: Jaccard similarity of shingle sets at or above which two records are near-duplicates. With the
#: default character 5-grams on BANKING77 queries (60 characters), one typo, inserted, deleted or
#: swapped word leaves a median Jaccard of 0.78 (quartiles 0.70-0.86), two edits 0.64; between
#: distinct queries, 262 pairs reach 0.8 (96% with the same intent) and 941 reach 0.7 (95%).
DEFAULT_THRESHOLD = 0.8
#: LSH buckets up to this size yield all their pairs; larger ones only pairs within this window.
DEFAULT_MAX_BUCKET = 256
#: Exact verification covers estimates within this many standard errors of the threshold.
DEFAULT_MARGIN_SD = 4.0
#: LSH (false positive, false negative) weights: a missed pair is lost for good, while a false
#: candidate only costs one verification, so misses weigh more (datasketch uses 0.5, 0.5).
DEFAULT_LSH_WEIGHTS = (0.05, 0.95)
#: Records per batch in ``signatures``: bounds the temporaries to a few MB (1k-16k measured the
#: same speed; 64k was 20% slower).
BATCH_RECORDS = 4_096
#: Shingles per permutation block: 4096 x 128 permutations x 4 bytes is 2 MiB, a core's L2 cache
#: here; measured fastest, and twice as fast as blocks of 64k shingles.
_BLOCK_SHINGLES = 4_096
_PAIR_BLOCK = 32_768

ShingleKind: TypeAlias = Literal["word", "char"]
TextInput: TypeAlias = "Sequence[str] | pa.Array | pa.ChunkedArray"
UInt32Array: TypeAlias = npt.NDArray[np.uint32]
UInt64Array: TypeAlias = npt.NDArray[np.uint64]
Int64Array: TypeAlias = npt.NDArray[np.int64]
Float64Array: TypeAlias = npt.NDArray[np.float64]
_U64 = np.uint64


class SignatureParamsError(ConfigError, ValueError):
    """Stored signatures were computed with parameters other than the requested ones."""


class SignatureFileError(InputError, ValueError):
    """A file is not a readable signature file."""


class Shingles(NamedTuple):
    """Shingle-hash sets of ``n`` records: record ``i`` owns ``hashes[offsets[i]:offsets[i+1]]``.

    Attributes:
        hashes: ``(n_shingles,)`` uint32, sorted and distinct within each record.
        offsets: ``(n+1,)`` int64, ``offsets[0] == 0``; every record has at least one shingle.
    """

    hashes: UInt32Array
    offsets: Int64Array


@dataclass(frozen=True)
class MinHashParams:
    """Everything that makes two signatures comparable; stored beside persisted signatures.

    Attributes:
        seed: seeds the permutations; any integer in ``[0, 2**64)``.
        num_perm: number of permutations, the signature width.
        shingle: ``"char"`` for character k-grams (robust to typos in short texts), ``"word"``
            for word k-grams.
        k: shingle length in characters or words; a text shorter than ``k`` is one shingle.
        scheme: ``SCHEME_VERSION`` of the code that computed the signatures.
    """

    seed: int = 1
    num_perm: int = 128
    shingle: ShingleKind = "char"
    k: int = 5
    scheme: str = SCHEME_VERSION

    def __post_init__(self) -> None:
        for name, low, high in (("seed", 0, 2**64 - 1), ("num_perm", 1, 8192), ("k", 1, 64)):
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise ValueError(
                    f"MinHash parameter {name} must be an integer from {low} to {high}, "
                    f"but it is {value!r}."
                )
        if self.shingle not in ("word", "char"):
            raise ValueError(
                f'MinHash parameter shingle must be "word" or "char", but it is {self.shingle!r}.'
            )
        if not isinstance(self.scheme, str) or not self.scheme:
            raise ValueError(
                f"MinHash parameter scheme must be a non-empty string, but it is {self.scheme!r}."
            )

    def to_dict(self) -> dict[str, int | str]:
        """Plain JSON-ready dict, the inverse of ``from_dict``."""
        return dict(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MinHashParams:
        """Build params from ``to_dict`` output; unknown or missing keys are errors."""
        names = {f.name for f in fields(cls)}
        unknown, missing = sorted(set(data) - names), sorted(names - set(data))
        if unknown or missing:
            raise ValueError(
                f"MinHash parameters must have exactly the keys {sorted(names)}, but "
                f"{unknown} are unknown and {missing} are missing; write them with "
                "MinHashParams.to_dict()."
            )
        return cls(**dict(data))


DEFAULT_PARAMS = MinHashParams()


# --- normalization --------------------------------------------------------------------------

# Python's str.isspace() among bytes below 0x80: \t \n \v \f \r, the separators 0x1c-0x1f and
# space. Bytes of multi-byte UTF-8 characters are >= 0x80, so byte operations never touch them.
_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True


def _normalize_one(text: str) -> str:
    """The definition; the same as ``flywheel.ingest.normalize``, which judges exact duplicates,
    so texts that are exact duplicates there get identical signatures here."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _text_array(texts: TextInput) -> Any:
    """Texts as one Arrow string or large_string array without nulls."""
    if isinstance(texts, pa.ChunkedArray):
        arr = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    elif isinstance(texts, pa.Array):
        arr = texts
    elif isinstance(texts, str):
        raise ValueError("Texts must be a sequence of strings, not one string; wrap it: [text].")
    else:
        arr = pa.array(texts, type=pa.string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise ValueError(f"Texts must be strings, but the Arrow array has type {arr.type}.")
    if arr.null_count:
        first = pc.index(pc.is_null(arr), True).as_py()
        raise ValueError(
            f"Texts contain {arr.null_count} missing values, the first at row {first}; drop "
            "those rows or replace them with empty strings before computing signatures."
        )
    return arr


def _utf8(arr: Any) -> tuple[npt.NDArray[np.uint8], Int64Array]:
    """Zero-copy UTF-8 bytes ``(total,)`` and row offsets ``(n+1,)`` (from 0) of a string array."""
    offset_type = np.int32 if pa.types.is_string(arr.type) else np.int64
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=offset_type)[arr.offset : arr.offset + len(arr) + 1]
    offsets = offsets.astype(np.int64)
    if data_buf is None or offsets[-1] == offsets[0]:
        return np.zeros(0, dtype=np.uint8), offsets - offsets[0]
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data, offsets - offsets[0]


def _normalized_utf8(arr: Any) -> tuple[npt.NDArray[np.uint8], Int64Array]:
    """Normalized UTF-8 bytes ``(total,)`` and offsets ``(n+1,)`` of an Arrow string array.

    Rows with non-ASCII characters are normalized per row in Python (exact Unicode; pyarrow has
    no casefold). For ASCII, NFKC is the identity and casefold is lowercasing, so the rest is
    byte work over all rows at once: lowercase ASCII letters; of each whitespace run keep the
    first byte, as a space, if non-whitespace follows in the same record, and drop the rest. That
    leaves the Python-normalized rows unchanged. A pyarrow regex kernel for the whitespace
    measured 3x slower, and so did sending every row with odd whitespace to Python on texts
    with newlines.
    """
    non_ascii = pc.invert(pc.string_is_ascii(arr))
    if pc.any(non_ascii).as_py():
        slow = [_normalize_one(t) for t in arr.filter(non_ascii).to_pylist()]
        arr = pc.replace_with_mask(arr, non_ascii, pa.array(slow, type=arr.type))
    data, offsets = _utf8(arr)
    # Arithmetic rather than table lookups: a 256-entry fancy index measured 10x slower.
    out = data + ((data - np.uint8(ord("A"))) < 26).view(np.uint8) * np.uint8(32)
    low = np.flatnonzero(data <= 0x20)  # whitespace is among these
    spaces = low[_IS_SPACE[data[low]]]  # (s,) positions of whitespace bytes, ascending
    if spaces.size == 0:
        return out, offsets
    # Runs of consecutive whitespace bytes: where each starts, and the position after it.
    first = np.ones(spaces.size, dtype=bool)
    first[1:] = spaces[1:] != spaces[:-1] + 1
    starts = np.flatnonzero(first)
    run_first = spaces[starts]
    after_run = spaces[np.append(starts[1:], spaces.size) - 1] + 1
    # Inner: neither the run's first byte nor the byte after the run starts a record (the end of
    # the data counts as one), and for longer runs no record starts inside the run.
    record_start = np.zeros(data.size + 1, dtype=bool)
    record_start[offsets] = True
    inner = ~record_start[run_first] & ~record_start[after_run]
    longer = np.flatnonzero(after_run - run_first > 1)
    if longer.size:
        inside = np.searchsorted(offsets, run_first[longer], side="right") != np.searchsorted(
            offsets, after_run[longer] - 1, side="right"
        )
        inner[longer[inside]] = False
    keep = np.zeros(spaces.size, dtype=bool)
    keep[starts[inner]] = True
    out[run_first[inner]] = 0x20
    drop = spaces[~keep]
    if drop.size == 0:
        return out, offsets
    return np.delete(out, drop), offsets - np.searchsorted(drop, offsets)


def _string_array(data: npt.NDArray[np.uint8], offsets: Int64Array) -> Any:
    large = offsets[-1] > np.iinfo(np.int32).max
    kind, offset_type = (pa.large_string(), np.int64) if large else (pa.string(), np.int32)
    buffers = [None, pa.py_buffer(offsets.astype(offset_type)), pa.py_buffer(data.copy())]
    return pa.Array.from_buffers(kind, offsets.size - 1, buffers)


def normalize(texts: TextInput) -> Any:
    """NFKC, casefold, whitespace runs (``str.isspace``) to one space, ends trimmed.

    Equal to ``" ".join(unicodedata.normalize("NFKC", t).casefold().split())`` for every text,
    computed with byte operations for ASCII rows and per row only for non-ASCII rows.

    Args:
        texts: ``n`` strings (sequence, Arrow string array or chunked array), no nulls.

    Returns:
        Arrow string array, length ``n``.
    """
    return _string_array(*_normalized_utf8(_text_array(texts)))


# --- hashing primitives ---------------------------------------------------------------------

_FMIX_1, _FMIX_2 = _U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53)
_POLY_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_POLY_BASE_INV = pow(_POLY_BASE, -1, 2**64)


def _stream(salt: int, count: int) -> UInt64Array:
    """``count`` distinct uint64 values for a salt: inputs to fmix64 for random constants."""
    return _U64(salt) + np.arange(count, dtype=np.uint64) * _U64(0x9E3779B97F4A7C15)


def _fmix64(h: UInt64Array) -> UInt64Array:
    """MurmurHash3's 64-bit finalizer: a bijection whose every output bit depends on every input."""
    h = h ^ (h >> _U64(33))
    h *= _FMIX_1
    h ^= h >> _U64(33)
    h *= _FMIX_2
    h ^= h >> _U64(33)
    return h


_POWER_CACHE: dict[int, UInt64Array] = {}


def _powers(base: int, count: int) -> UInt64Array:
    """``base**i mod 2**64`` for ``i`` in ``0..count-1``; uint64 wraps, which is the modulus.

    Kept between batches (read-only, grown by doubling): recomputing the sequential
    ``cumprod`` per batch measured a quarter of the shingle time.
    """
    table = _POWER_CACHE.get(base)
    if table is None or table.size < count:
        size = max(count, 2 * (0 if table is None else table.size), 1 << 16)
        table = np.full(size, _U64(base), dtype=np.uint64)
        table[:1] = 1
        np.cumprod(table, out=table)
        table.flags.writeable = False
        _POWER_CACHE[base] = table
    return table[:count]


def _permutations(seed: int, num_perm: int) -> tuple[UInt32Array, UInt32Array]:
    """Coefficients ``a`` (odd) and ``b``, each shape ``(num_perm,)`` uint32, from SplitMix64.

    Our own generator rather than numpy's so that stored signatures stay comparable across numpy
    versions. An odd ``a`` makes ``a*x + b mod 2**32`` a bijection: the permutation step adds no
    collisions (the reason datasketch moved to this "affine32" family in 2.0). Shingle hashes are
    already fmix-avalanched, so no pre-mix is needed here.
    """
    z = _U64(seed) + np.arange(1, 2 * num_perm + 1, dtype=np.uint64) * _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    z = (z ^ (z >> _U64(31))) >> _U64(32)
    return (z[0::2] | _U64(1)).astype(np.uint32), z[1::2].astype(np.uint32)


# --- shingles -------------------------------------------------------------------------------


def _units(
    data: npt.NDArray[np.uint8], offsets: Int64Array, shingle: ShingleKind
) -> tuple[Int64Array, Int64Array]:
    """Byte start and end (exclusive), each ``(units,)``, of every character or word."""
    total = data.size
    if shingle == "char":
        starts = np.flatnonzero((data & 0xC0) != 0x80)  # not a UTF-8 continuation byte
        return starts, np.append(starts[1:], total)
    # Normalized text has single spaces and none at the ends, so words are the runs between.
    nonempty = offsets[1:] > offsets[:-1]
    spaces = np.flatnonzero(data == 0x20)
    is_start = np.zeros(total + 1, dtype=bool)
    is_start[spaces + 1] = True
    is_start[offsets[:-1][nonempty]] = True
    is_end = np.zeros(total + 1, dtype=bool)
    is_end[spaces] = True
    is_end[offsets[1:][nonempty]] = True
    return np.flatnonzero(is_start), np.flatnonzero(is_end)


def _shingles(
    data: npt.NDArray[np.uint8], offsets: Int64Array, shingle: ShingleKind, k: int
) -> tuple[UInt32Array, Int64Array]:
    """Shingle hashes of normalized UTF-8 texts; see ``shingle_hashes``.

    A shingle starts at each unit (character or word) that has ``k - 1`` more units after it in
    its record; a record of fewer than ``k`` units is one shingle, and the empty record is the
    empty string. The shingle's hash is the hash of its bytes, so it does not depend on the batch.
    """
    n, total = offsets.size - 1, data.size
    if shingle == "char" and not (data >= 0x80).any():  # ASCII: one byte per character
        first, count, n_units = offsets[:-1], np.diff(offsets), total
        starts = ends = None
    else:
        starts, ends = _units(data, offsets, shingle)
        n_units = starts.size
        first = np.searchsorted(starts, offsets[:-1])  # (n,) first unit of each record
        count = np.searchsorted(starts, offsets[1:]) - first  # (n,) units per record
    # Units that start a shingle: all but the last min(count, k) - 1 of each record.
    record_end = first + count
    tail = record_end[:, None] - np.arange(1, k)  # (n, k-1) last units of each record
    starts_shingle = np.ones(n_units, dtype=bool)
    starts_shingle[tail[tail > first[:, None]]] = False  # a record's first unit always starts one
    unit = np.flatnonzero(starts_shingle)
    short = np.flatnonzero((count > 0) & (count < k))  # one shingle: the whole text
    at_short = np.searchsorted(unit, first[short])
    # Polynomial prefix hash of the bytes (+1 so that zero bytes count): the hash of bytes
    # [lo, hi) is (P[hi] - P[lo]) * base**-lo, the same wherever the shingle sits. All arithmetic
    # is modulo 2**64 by uint64 wraparound. This costs a few array passes; calling xxhash once
    # per shingle from Python measured 5-7x slower than this whole function. Polynomial hashes
    # collide only for adversarial strings thousands of bytes long; fmix64 spreads the bits.
    prefix = np.zeros(total + 1, dtype=np.uint64)
    np.cumsum((data + _U64(1)) * _powers(_POLY_BASE, total), out=prefix[1:])
    inverse = _powers(_POLY_BASE_INV, total + 1)
    if starts is None or ends is None:
        # ASCII characters: every k-byte window at once, then pick the shingle starts (one
        # gather instead of three); short records are patched after.
        width = max(total - k + 1, 1)
        window = prefix[:1]  # a placeholder when every record is short
        if total >= k:
            window = (prefix[k : k + width] - prefix[:width]) * inverse[:width]
        poly = window[np.minimum(unit, width - 1)]
        lo, hi = first[short], record_end[short]
        poly[at_short] = (prefix[hi] - prefix[lo]) * inverse[lo]
    else:
        lo, hi = starts[unit], ends[np.minimum(unit + (k - 1), n_units - 1)]
        hi[at_short] = offsets[1:][short]
        poly = (prefix[hi] - prefix[lo]) * inverse[lo]
    hashes = (_fmix64(poly) >> _U64(32)).astype(np.uint32)
    per_record = np.where(count > 0, np.maximum(count - k + 1, 1), 1)
    shingle_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per_record, out=shingle_offsets[1:])
    empty = np.flatnonzero(count == 0)
    if empty.size:  # the empty string hashes to fmix64(0) >> 32 == 0
        hashes = np.insert(hashes, shingle_offsets[empty] - np.arange(empty.size), np.uint32(0))
    return hashes, shingle_offsets


def _distinct(hashes: UInt32Array, offsets: Int64Array) -> Shingles:
    """Each record's shingle hashes sorted and without repeats: the set that Jaccard is about."""
    n = offsets.size - 1
    record = np.repeat(np.arange(n, dtype=np.uint64), np.diff(offsets))
    keys = (record << _U64(32)) | hashes
    keys.sort()
    distinct = np.ones(keys.size, dtype=bool)
    distinct[1:] = keys[1:] != keys[:-1]
    keys = keys[distinct]
    counts = np.bincount((keys >> _U64(32)).astype(np.int64), minlength=n)
    out = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return Shingles(keys.astype(np.uint32), out)


def shingle_hashes(texts: TextInput, params: MinHashParams = DEFAULT_PARAMS) -> Shingles:
    """The set of shingle hashes of every normalized text (see ``Shingles``).

    Args:
        texts: ``n`` strings, no nulls.
        params: shingle kind and ``k`` are used.
    """
    return _distinct(*_shingles(*_normalized_utf8(_text_array(texts)), params.shingle, params.k))


def shingle_sets(texts: TextInput, params: MinHashParams = DEFAULT_PARAMS) -> list[set[int]]:
    """Set of shingle hashes per record, for exact Jaccard in tests (a loop per record)."""
    hashes, offsets = shingle_hashes(texts, params)
    return [set(part.tolist()) for part in np.split(hashes, offsets[1:-1])]


# --- signatures -----------------------------------------------------------------------------


def _minhash(
    hashes: UInt32Array, offsets: Int64Array, a: UInt32Array, b: UInt32Array, out: UInt32Array
) -> None:
    """Per-record minimum of ``a*x + b mod 2**32``: ``(n_shingles,)`` -> ``out`` ``(n, num_perm)``.

    Blocks of whole records, each ``(num_perm, block)``: multiply, add and ``minimum.reduceat``
    run along contiguous rows, measured 2-3x faster than the ``(block, num_perm)`` layout; the
    minima go straight into the transposed view of ``out``.
    """
    n, num_perm = offsets.size - 1, a.size
    if n == 0:
        return
    cuts = np.searchsorted(offsets, np.arange(_BLOCK_SHINGLES, offsets[-1], _BLOCK_SHINGLES))
    bounds = np.unique(np.concatenate(([0], cuts, [n])))
    widest = int(np.max(offsets[bounds[1:]] - offsets[bounds[:-1]]))
    buffer = np.empty(num_perm * widest, dtype=np.uint32)
    a_col, b_col, out_t = a[:, None], b[:, None], out.T
    for first, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        lo, hi = int(offsets[first]), int(offsets[stop])
        block = buffer[: num_perm * (hi - lo)].reshape(num_perm, hi - lo)
        np.multiply(a_col, hashes[None, lo:hi], out=block)  # uint32 wraps: mod 2**32
        np.add(block, b_col, out=block)
        np.minimum.reduceat(block, offsets[first:stop] - lo, axis=1, out=out_t[:, first:stop])


def _batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _sketch(
    texts: TextInput, params: MinHashParams, batch_size: int, workers: int, keep: bool
) -> tuple[UInt32Array, Shingles | None]:
    if params.scheme != SCHEME_VERSION:
        raise ValueError(
            f"This code computes MinHash scheme {SCHEME_VERSION!r}, not {params.scheme!r}; "
            "recompute all signatures with the current scheme."
        )
    if batch_size < 1 or workers < 1:
        raise ValueError(
            f"batch_size and workers must be at least 1, but they are {batch_size} and {workers}."
        )
    arr = _text_array(texts)
    a, b = _permutations(params.seed, params.num_perm)
    out = np.empty((len(arr), params.num_perm), dtype=np.uint32)

    def one_batch(bounds: tuple[int, int]) -> Shingles | None:
        start, stop = bounds
        data, text_offsets = _normalized_utf8(arr.slice(start, stop - start))
        hashes, offsets = _shingles(data, text_offsets, params.shingle, params.k)
        _minhash(hashes, offsets, a, b, out[start:stop])  # batches write disjoint rows
        return _distinct(hashes, offsets) if keep else None

    batches = list(_batches(len(arr), batch_size))
    if workers > 1 and len(batches) > 1:
        # numpy releases the GIL in its loops, so batches overlap; the per-row Python fallback
        # of normalization does not, which caps the gain below the number of cores.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(one_batch, batches))
    else:
        parts = [one_batch(bounds) for bounds in batches]
    if not keep:
        return out, None
    kept = [part for part in parts if part is not None]
    offsets = np.zeros(len(arr) + 1, dtype=np.int64)
    if kept:
        np.cumsum(np.concatenate([np.diff(part.offsets) for part in kept]), out=offsets[1:])
    hashes = np.concatenate([part.hashes for part in kept]) if kept else np.zeros(0, np.uint32)
    return out, Shingles(hashes, offsets)


def signatures(
    texts: TextInput,
    params: MinHashParams = DEFAULT_PARAMS,
    *,
    batch_size: int = BATCH_RECORDS,
    workers: int = 1,
) -> UInt32Array:
    """MinHash signatures of the normalized shingle sets.

    Args:
        texts: ``n`` strings, no nulls.
        params: must carry this code's ``SCHEME_VERSION``.
        batch_size: records per batch; the result does not depend on it.
        workers: threads working on batches at once; the result does not depend on it.

    Returns:
        ``(n, params.num_perm)`` uint32; equal rows for texts equal after ``normalize``.
    """
    return _sketch(texts, params, batch_size, workers, keep=False)[0]


def sketch(
    texts: TextInput,
    params: MinHashParams = DEFAULT_PARAMS,
    *,
    batch_size: int = BATCH_RECORDS,
    workers: int = 1,
) -> tuple[UInt32Array, Shingles]:
    """Signatures and the shingle sets they came from, in one pass (for exact verification).

    Returns:
        ``(signatures (n, num_perm) uint32, Shingles of the n records)``; the shingles take
        about 4 bytes per character of text.
    """
    sigs, shingles = _sketch(texts, params, batch_size, workers, keep=True)
    assert shingles is not None  # keep=True always returns them
    return sigs, shingles


# --- exact Jaccard --------------------------------------------------------------------------


def exact_jaccard(a: Set[Hashable], b: Set[Hashable]) -> float:
    """Jaccard similarity ``|a & b| / |a | b|`` of two shingle sets; 1.0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _exact(sh_a: Shingles, sh_b: Shingles, ia: Int64Array, ib: Int64Array) -> Float64Array:
    """Exact Jaccard of the shingle sets of ``sh_a`` record ``ia`` and ``sh_b`` record ``ib``.

    Both sets of every pair, tagged ``pair << 32 | hash``, go into one array; after one sort
    each shared hash is an adjacent equal pair (a ``searchsorted`` per element measured 10%
    slower). Sets must be distinct per record, as ``Shingles`` guarantees.
    """
    out = np.empty(ia.size, dtype=np.float64)
    for start, stop in _batches(ia.size, _PAIR_BLOCK):
        size_a = sh_a.offsets[ia[start:stop] + 1] - sh_a.offsets[ia[start:stop]]
        size_b = sh_b.offsets[ib[start:stop] + 1] - sh_b.offsets[ib[start:stop]]
        pair_a, at_a = _expand(sh_a.offsets[ia[start:stop]], size_a)
        pair_b, at_b = _expand(sh_b.offsets[ib[start:stop]], size_b)
        keys = np.concatenate(
            (
                (pair_a.astype(np.uint64) << _U64(32)) | sh_a.hashes[at_a],
                (pair_b.astype(np.uint64) << _U64(32)) | sh_b.hashes[at_b],
            )
        )
        keys.sort(kind="stable")  # runs of sorted sets: measured 2x faster than the default
        shared_keys = keys[1:][keys[1:] == keys[:-1]]
        shared = np.bincount((shared_keys >> _U64(32)).astype(np.int64), minlength=stop - start)
        out[start:stop] = shared / (size_a + size_b - shared)
    return out


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


# --- LSH ------------------------------------------------------------------------------------


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


def _check_signatures(sigs: npt.ArrayLike, name: str = "signatures") -> UInt32Array:
    arr = np.asarray(sigs)
    if arr.ndim != 2 or arr.dtype != np.uint32:
        raise ValueError(
            f"{name} must be a uint32 array of shape (n, num_perm) as returned by signatures(), "
            f"but got dtype {arr.dtype} and shape {arr.shape}."
        )
    return arr


def _check_bands(num_perm: int, bands: int, rows: int, max_bucket: int) -> None:
    if bands < 1 or rows < 1 or bands * rows > num_perm:
        raise ValueError(
            f"bands={bands} and rows={rows} need bands*rows <= num_perm={num_perm} and both at "
            "least 1; take them from lsh_params(threshold, num_perm)."
        )
    if max_bucket < 2:
        raise ValueError(f"max_bucket must be at least 2, but it is {max_bucket}.")


def _band_keys(sigs: UInt32Array, bands: int, rows: int) -> tuple[UInt64Array, UInt64Array]:
    """One uint64 key per record and band ``(n, bands)``, and a whole-signature key ``(n,)``.

    A key is fmix64 of a random linear combination of the band's rows, with the band index
    mixed in so that all bands can share one sort. Unequal band rows share a key only by
    accident (about one pair in 2**40 after ``_buckets`` keeps the high bits); ``verify``
    removes such pairs like any other false candidate.
    """
    n = sigs.shape[0]
    # Independent random constants per row, per band and for the whole-signature key
    # (sharing one stream made a row constant equal a band salt, and keys collide across bands).
    coefficients = _fmix64(_stream(0x5BD1E995, rows)) | _U64(1)
    keys = np.empty((n, bands), dtype=np.uint64)
    for start, stop in _batches(n, _PAIR_BLOCK):  # bounds the uint64 copy of the signatures
        view = sigs[start:stop, : bands * rows].reshape(stop - start, bands, rows)
        # einsum's integer loops wrap modulo 2**64; measured 1.2-1.8x faster than looping rows.
        keys[start:stop] = np.einsum("nbr,r->nb", view.astype(np.uint64), coefficients)
    keys = _fmix64(keys ^ _fmix64(_stream(0x27D4EB2F, bands)))
    whole = _fmix64(np.einsum("nb,b->n", keys, _fmix64(_stream(0x165667B1, bands)) | _U64(1)))
    return keys, whole


def _expand(first: Int64Array, count: Int64Array) -> tuple[Int64Array, Int64Array]:
    """For each ``i``, the ranges ``first[i] .. first[i]+count[i]-1``, flattened: ``(source i,
    value)``, each ``(count.sum(),)``."""
    source = np.repeat(np.arange(first.size), count)
    starts = np.cumsum(count) - count
    return source, first[source] + (np.arange(source.size) - starts[source])


def _buckets(
    keys: UInt64Array, whole: UInt64Array, bands: int, max_bucket: int
) -> tuple[Int64Array, Int64Array, Int64Array]:
    """Group band keys into buckets of size >= 2.

    Args:
        keys: ``(n, bands)`` from ``_band_keys``; ``whole``: ``(n,)``.

    Returns:
        ``(order, starts, sizes)``: ``order`` ``(n*bands,)`` lists flat indices
        ``record*bands + band`` by bucket; bucket ``g`` of ``starts``/``sizes`` ``(g,)`` occupies
        ``order[starts[g] : starts[g] + sizes[g]]``. Within a bucket records are in index order,
        except in buckets above ``max_bucket``, ordered by ``whole`` so equal signatures are
        adjacent.
    """
    total = keys.size
    bits = max(int(total - 1).bit_length(), 1)
    if bits > 40:
        raise ValueError(
            f"{keys.shape[0]} records x {bands} bands is too many for one LSH pass; match the "
            "records in chunks with match_against."
        )
    # The flat index in the low bits of the key: one in-place np.sort (SIMD for uint64) gives
    # both groups and order; measured 2-3x faster than argsort and 7x faster than lexsort.
    low = _U64((1 << bits) - 1)
    packed = (keys.reshape(-1) & ~low) | np.arange(total, dtype=np.uint64)
    packed.sort()
    order = (packed & low).astype(np.int64)
    high = packed >> _U64(bits)
    boundary = np.flatnonzero(high[1:] != high[:-1]) + 1
    starts = np.concatenate(([0], boundary))
    sizes = np.diff(np.append(starts, total))
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
    n = sigs.shape[0]
    order, starts, sizes = _buckets(*_band_keys(sigs, bands, rows), bands, max_bucket)
    group, position = _expand(starts, sizes)
    count = np.minimum(starts[group] + sizes[group] - position - 1, max_bucket - 1)
    source, partner = _expand(position + 1, count)
    first = order[position[source]] // bands
    second = order[partner] // bands
    lo, hi = np.minimum(first, second), np.maximum(first, second)
    keep = lo != hi  # a record meets itself only through a key collision across bands
    return _unique_pairs(lo[keep], hi[keep], n)


def _agreements(
    sigs_a: UInt32Array, sigs_b: UInt32Array, ia: Int64Array, ib: Int64Array
) -> Float64Array:
    """Fraction of equal signature values of ``sigs_a[ia]`` and ``sigs_b[ib]``, ``(m,)``."""
    out = np.empty(ia.size, dtype=np.float64)
    for start, stop in _batches(ia.size, _PAIR_BLOCK):  # bounds the (block, num_perm) temporary
        equal = sigs_a[ia[start:stop]] == sigs_b[ib[start:stop]]
        out[start:stop] = np.count_nonzero(equal, axis=1) / sigs_a.shape[1]
    return out


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
    order, starts, sizes = _buckets(
        *_band_keys(np.concatenate((old, new)), bands, rows), bands, max_bucket
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
    pairs = _unique_pairs(new_idx, old_idx, max(n_old, 1))
    estimate = _agreements(new, old, pairs[:, 0], pairs[:, 1])
    exact = None
    if new_shingles is not None and old_shingles is not None:
        _check_shingles(new_shingles, new.shape[0], "new_shingles")
        _check_shingles(old_shingles, n_old, "old_shingles")
        exact = functools.partial(_exact_rows, new_shingles, old_shingles, pairs)
    return pairs[_verified(estimate, threshold, new.shape[1], margin_sd, exact)]


# --- persistence ----------------------------------------------------------------------------

_PARAMS_KEY = b"flywheel.minhash.params"


def save_signatures(
    path: str | os.PathLike[str],
    ids: Sequence[str] | Any,
    signatures: npt.ArrayLike,
    params: MinHashParams,
) -> None:
    """Write ids and signatures to Parquet atomically, with ``params`` in the schema metadata.

    Columns: ``id`` string, ``signature`` fixed_size_list<uint32>[num_perm]. The file appears
    complete or not at all: written to a temporary file in the same directory, fsynced, then
    renamed over ``path``.

    Args:
        ids: ``n`` record ids, no nulls.
        signatures: ``(n, params.num_perm)`` uint32.
    """
    sigs = _check_signatures(signatures)
    id_array = pa.array(ids, type=pa.string()) if not isinstance(ids, pa.Array) else ids
    if len(id_array) != sigs.shape[0] or sigs.shape[1] != params.num_perm:
        raise ValueError(
            f"Got {len(id_array)} ids and signatures of shape {sigs.shape}, but need one id per "
            f"row and num_perm={params.num_perm} columns."
        )
    if id_array.null_count:
        raise ValueError(
            f"Ids contain {id_array.null_count} missing values; give every record an id."
        )
    values = pa.array(np.ascontiguousarray(sigs).reshape(-1), type=pa.uint32())
    column = pa.FixedSizeListArray.from_arrays(values, params.num_perm)
    schema = pa.schema(
        [("id", pa.string()), ("signature", column.type)],
        metadata={_PARAMS_KEY: json.dumps(params.to_dict(), sort_keys=True).encode()},
    )
    table = pa.Table.from_arrays([id_array.cast(pa.string()), column], schema=schema)
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_signatures(
    path: str | os.PathLike[str], params: MinHashParams
) -> tuple[list[str], UInt32Array]:
    """Read a file written by ``save_signatures``, refusing one made with other parameters.

    Returns:
        ``(ids, signatures)``: ``n`` ids and ``(n, params.num_perm)`` uint32.

    Raises:
        SignatureParamsError: the stored parameters differ from ``params``.
        SignatureFileError: the file is not Parquet or lacks the columns or parameters.
    """
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise SignatureFileError(
            f"{path} is not a readable Parquet file ({err}); delete it and recompute the "
            "signatures."
        ) from err
    raw = (schema.metadata or {}).get(_PARAMS_KEY)
    if raw is None or schema.names != ["id", "signature"]:
        raise SignatureFileError(
            f"{path} is not a signature file written by save_signatures (it has columns "
            f"{schema.names} and {'no' if raw is None else 'its'} MinHash parameters); point "
            "to the right file or delete it and recompute the signatures."
        )
    try:
        stored = MinHashParams.from_dict(json.loads(raw))
    except (ValueError, TypeError) as err:
        raise SignatureFileError(f"{path} has unreadable MinHash parameters: {err}") from err
    if stored != params:
        theirs, ours = stored.to_dict(), params.to_dict()
        diff = [key for key in ours if theirs[key] != ours[key]]
        raise SignatureParamsError(
            f"The signatures in {path} were computed with "
            f"{', '.join(f'{key}={theirs[key]!r}' for key in diff)}, but this run asks for "
            f"{', '.join(f'{key}={ours[key]!r}' for key in diff)}, and signatures are only "
            "comparable when seed, num_perm, shingle, k and scheme all match. Set the "
            "parameters back to the stored values, or delete the file so that the signatures "
            "of all records are recomputed with the new ones."
        )
    table = pq.read_table(path)
    column = table.column("signature").combine_chunks()
    if column.type != pa.list_(pa.uint32(), params.num_perm) or column.null_count:
        raise SignatureFileError(
            f"{path} has a signature column of type {column.type} with {column.null_count} "
            f"missing values, not fixed_size_list<uint32>[{params.num_perm}] without nulls; "
            "delete it and recompute the signatures."
        )
    sigs = column.flatten().to_numpy().reshape(-1, params.num_perm).copy()
    return table.column("id").to_pylist(), sigs
