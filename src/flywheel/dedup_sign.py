"""Signatures of the dedup keys: from the store of earlier builds, the rest computed and added.

``sign`` looks every key up in ``data/cache/minhash/`` (``flywheel.signature_store``), signs the
keys it does not hold from their texts, and appends them to the store on a background thread.
``Signed.shingles_of`` gives the shingle sets the exact check needs, computed on demand from the
texts kept from signing (or read again for keys signed in earlier builds).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import dedup_pairs, minhash, records, signature_store
from flywheel.minhash_params import THREADS

log = logging.getLogger("flywheel.dedup")
Ints = npt.NDArray[np.int64]

TextsOf = Callable[[Ints], pa.Array]  # key ordinals -> their texts


@dataclass
class Signed:
    """Signatures of every key, and the texts of the keys signed in this run."""

    sigs: npt.NDArray[np.uint32]
    computed: Ints  # key ordinals signed in this run (the others came from the cache)
    texts: pa.Array  # of ``computed``, in that order
    saving: Future[None] | None = None  # the store being written; ``result()`` waits for it

    def shingles_of(self, texts_of: TextsOf, mh: minhash.MinHashParams) -> dedup_pairs.ShinglesOf:
        """Shingle sets of any keys, from the texts kept from signing or else read again.

        Computed on demand for the endpoints of the pairs that need the exact check, a small
        share of the keys: keeping every key's sorted shingle set from signing cost more."""
        where = np.full(len(self.sigs), -1, dtype=np.int64)
        where[self.computed] = np.arange(len(self.computed))

        def get(keys: Ints) -> minhash.Shingles:
            at = where[keys]
            kept = at >= 0
            texts = self.texts.take(pa.array(at[kept]))
            if not kept.all():
                texts = records.interleave(kept, texts, texts_of(keys[~kept]))
            return minhash.shingle_hashes(texts, mh)

        return get


def sign(
    texts_of: TextsOf, keys: pa.Array, mh: minhash.MinHashParams, cache: Path | None
) -> Signed:
    """Signatures of the ``keys`` (hex strings), reusing those in the ``cache`` store
    (``flywheel.signature_store``) and adding the new ones to it."""
    sigs = np.empty((len(keys), mh.num_perm), dtype=np.uint32)  # every row is filled below
    todo = np.ones(len(keys), dtype=bool)
    stored = 0
    rewrite = cache is not None
    if cache is not None:
        try:
            old_ids, segments = signature_store.load_segments(cache, mh)
            rewrite = False
        except (minhash.SignatureParamsError, minhash.SignatureFileError) as err:
            log.info("dedup: recomputing every signature: %s", err)
            old_ids, segments = pa.array([], pa.string()), []
        stored = len(old_ids)
        if 0 < stored <= len(keys) and old_ids.equals(keys.slice(0, stored)):
            # The usual new round: the store holds the earlier keys, in order (keys come in
            # first-delivery order and a build appends its new keys). One copy, no lookups.
            row = 0
            for segment in segments:
                sigs[row : row + len(segment)] = segment
                row += len(segment)
            todo[:stored] = False
        elif stored:
            old_sigs = np.concatenate(segments) if len(segments) > 1 else segments[0]
            at = pc.index_in(keys, value_set=old_ids)
            hit = np.asarray(pc.is_valid(at).to_numpy(zero_copy_only=False), dtype=bool)
            sigs[hit] = old_sigs[at.filter(pc.is_valid(at)).to_numpy()]
            todo = ~hit
            del old_sigs
        del segments
    computed = np.flatnonzero(todo)
    texts = pa.array([], pa.string())
    if len(computed):
        # Threads share the batches; the signatures do not depend on how many
        # (tests/test_minhash.py). The texts are kept for the exact check near the threshold.
        texts = texts_of(computed)
        sigs[computed] = minhash.signatures(texts, mh, workers=THREADS)
    save: Callable[[], None] | None = None
    if cache is not None:
        # Keys no longer delivered stay in the store until they are half of it.
        stale = stored - (len(keys) - len(computed))
        many = len(signature_store.segments(cache)) >= signature_store.MAX_SEGMENTS
        if rewrite or many or 2 * stale > stored:
            save = functools.partial(signature_store.replace_store, cache, keys, sigs, mh)
        elif len(computed):
            new_keys, new_sigs = keys.take(pa.array(computed)), sigs[computed]
            save = functools.partial(signature_store.add_segment, cache, new_keys, new_sigs, mh)
    # The store is written while the stage goes on (half a gigabyte for a full build; the
    # signatures are only read from here on); ``Signed.saving.result()`` waits for it and
    # raises what the write raised.
    return Signed(sigs, computed, texts, in_background(save) if save else None)


def in_background(fn: Callable[[], None]) -> Future[None]:
    """``fn`` on a thread of its own; the future's ``result()`` waits and raises what it raised."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="dedup-save")
    future = pool.submit(fn)
    pool.shutdown(wait=False)  # the thread finishes its one task, then exits
    return future
