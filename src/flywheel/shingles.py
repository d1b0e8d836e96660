"""Text to shingle-hash sets: normalization, shingling, and the hashing primitives under them.

Steps 1 and 2 of the near-duplicate pipeline described in ``flywheel.minhash``:

1. ``normalize``: NFKC, casefold, whitespace runs to one space, ends trimmed (the same text
   ``flywheel.ingest.normalize`` judges exact duplicates on).
2. shingles: character k-grams (``shingle="char"``) or word k-grams (``"word"``) of the normalized
   UTF-8 text, each hashed to uint32 from a polynomial prefix hash of its bytes.

``shingle_hashes`` gives each record's set of shingle hashes as ``Shingles``, the sets that exact
Jaccard is about (``shingle_sets``: the same as Python sets, for tests); ``flywheel.minhash``
turns the same hashes into signatures. ``_fmix64`` and ``_stream`` also make the LSH band keys
(``flywheel.lsh``). Any change here that changes a shingle hash changes signatures: bump
``SCHEME_VERSION``. ``flywheel.minhash`` re-exports the public names.
"""

from __future__ import annotations

import itertools
import unicodedata
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flywheel.lazy import lazy_module
from flywheel.minhash_params import (
    _U64,
    DEFAULT_PARAMS,
    Int64Array,
    MinHashParams,
    ShingleKind,
    TextInput,
    UInt32Array,
    UInt64Array,
)

if TYPE_CHECKING:
    from flywheel import kernels
else:
    kernels = lazy_module("flywheel.kernels")  # numba loads when a kernel first runs

__all__ = ["Shingles", "normalize", "shingle_hashes", "shingle_sets"]


class Shingles(NamedTuple):
    """Shingle-hash sets of ``n`` records: record ``i`` owns ``hashes[offsets[i]:offsets[i+1]]``.

    Attributes:
        hashes: ``(n_shingles,)`` uint32, sorted and distinct within each record.
        offsets: ``(n+1,)`` int64, ``offsets[0] == 0``; every record has at least one shingle.
    """

    hashes: UInt32Array
    offsets: Int64Array


# --- normalization --------------------------------------------------------------------------


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
    no casefold). For ASCII, NFKC is the identity and casefold is lowercasing, so the rest is one
    compiled pass over all rows (``flywheel.kernels.normalize_ascii_into``): lowercase ASCII
    letters, whitespace runs to one space between words. That leaves the Python-normalized rows
    unchanged. The numpy version took eight array passes and measured 3.6x slower on 200k replies.
    """
    non_ascii = pc.invert(pc.string_is_ascii(arr))
    if pc.any(non_ascii).as_py():
        slow = [_normalize_one(t) for t in arr.filter(non_ascii).to_pylist()]
        arr = pc.replace_with_mask(arr, non_ascii, pa.array(slow, type=arr.type))
    data, offsets = _utf8(arr)
    out = np.empty(data.size, dtype=np.uint8)
    out_offsets = np.empty(offsets.size, dtype=np.int64)
    size = kernels.normalize_ascii_into(data, offsets, out, out_offsets)
    return out[:size], out_offsets


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


# --- shingles -------------------------------------------------------------------------------


def _shingles(
    data: npt.NDArray[np.uint8], offsets: Int64Array, shingle: ShingleKind, k: int
) -> tuple[UInt32Array, Int64Array]:
    """Shingle hashes of normalized UTF-8 texts; see ``shingle_hashes``.

    A shingle starts at each unit (character or word) that has ``k - 1`` more units after it in
    its record; a record of fewer than ``k`` units is one shingle, and the empty record is the
    empty string. The shingle's hash is a polynomial hash of its bytes (+1 so that zero bytes
    count), modulo 2**64, through ``fmix64``: it does not depend on where the shingle sits or on
    the batch. Polynomial hashes collide only for adversarial strings thousands of bytes long;
    fmix64 spreads the bits. A compiled loop (``flywheel.kernels.shingles_into``): the numpy
    version took a dozen array passes and measured 2.3x slower on word 3-grams of support
    replies; calling xxhash per shingle from Python was slower still.
    """
    out_offsets = np.empty(offsets.size, dtype=np.int64)
    hashes = kernels.shingles_into(
        data,
        np.ascontiguousarray(offsets, dtype=np.int64),
        shingle == "word",
        k,
        _U64(_POLY_BASE),
        _U64(_POLY_BASE_INV),
        out_offsets,
    )
    return hashes, out_offsets


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
    bounds = offsets.tolist()
    return [set(hashes[lo:hi].tolist()) for lo, hi in itertools.pairwise(bounds)]
