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

This module computes the signatures (step 3) and re-exports the rest, so that everything above
is importable from ``flywheel.minhash`` (all listed in ``__all__``). Where each part lives:

- ``flywheel.minhash_params``: ``MinHashParams``, ``DEFAULT_PARAMS``, ``SCHEME_VERSION``.
- ``flywheel.shingles``: ``normalize``, ``shingle_hashes``, ``shingle_sets``, ``Shingles``.
- ``flywheel.minhash`` (here): ``signatures``, ``sketch``.
- ``flywheel.jaccard``: ``estimated_jaccard``, ``exact_jaccard``, ``exact_jaccard_pairs``,
  ``verify``.
- ``flywheel.lsh``: ``lsh_params``, ``candidate_pairs``, ``cross_candidates``, ``near_duplicates``,
  ``match_against``.
- ``flywheel.signature_store``: ``save_signatures``, ``load_signatures`` and their errors.

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

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from flywheel.jaccard import (
    DEFAULT_MARGIN_SD,
    DEFAULT_THRESHOLD,
    _agreements,
    _exact,
    estimated_jaccard,
    exact_jaccard,
    exact_jaccard_pairs,
    verify,
)
from flywheel.lazy import lazy_module
from flywheel.lsh import (
    DEFAULT_LSH_WEIGHTS,
    DEFAULT_MAX_BUCKET,
    candidate_pairs,
    cross_candidates,
    lsh_params,
    match_against,
    near_duplicates,
)
from flywheel.minhash_params import (
    _U64,
    DEFAULT_PARAMS,
    SCHEME_VERSION,
    Int64Array,
    MinHashParams,
    TextInput,
    UInt32Array,
    _batches,
)
from flywheel.shingles import (
    Shingles,
    _distinct,
    _normalized_utf8,
    _shingles,
    _text_array,
    normalize,
    shingle_hashes,
    shingle_sets,
)
from flywheel.signature_store import (
    SignatureFileError,
    SignatureParamsError,
    load_signatures,
    save_signatures,
)
from flywheel.unionfind import clusters

if TYPE_CHECKING:
    from flywheel import kernels
else:
    kernels = lazy_module("flywheel.kernels")  # numba loads when a kernel first runs

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
    "cross_candidates",
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

#: Records per batch in ``signatures``: bounds the temporaries to a few MB (1k-16k measured the
#: same speed; 64k was 20% slower).
BATCH_RECORDS = 4_096


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


def _minhash(
    hashes: UInt32Array, offsets: Int64Array, a: UInt32Array, b: UInt32Array, out: UInt32Array
) -> None:
    """Per-record minimum of ``a*x + b mod 2**32``: ``(n_shingles,)`` -> ``out`` ``(n, num_perm)``
    (a compiled loop, ``flywheel.kernels``)."""
    if offsets.size > 1:
        kernels.minhash_into(hashes, offsets, a, b, out)


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


def warm_up(params: MinHashParams, threshold: float) -> threading.Thread:
    """Load every compiled kernel on a thread of its own, started here, by running each step
    once on two tiny records with the types the stage passes. numba's first compiled call in a
    process costs 0.4-0.5 s before any work (importing numba and setting up its compiler, even
    with every kernel in its cache), mostly Python; a stage reads its inputs meanwhile, mostly
    Arrow I/O, which releases the GIL. A failure here is the stage's own to report later."""

    def run() -> None:
        try:
            sigs, shingles = sketch(pa.array(["a warm up", "another warm up"]), params)
            _agreements(sigs, sigs, np.zeros(1, np.int64), np.ones(1, np.int64))
            _exact(shingles, shingles, np.zeros(1, np.int64), np.ones(1, np.int64))
            cross_candidates(sigs[:1], [sigs[1:]], *lsh_params(threshold, params.num_perm))
        except Exception:  # the stage meets the same error and reports it
            pass

    thread = threading.Thread(target=run, name="flywheel-warm-up", daemon=True)
    thread.start()
    return thread
