"""Verified near-duplicate pairs of dedup keys, found round by round and kept between builds.

Keys come in first-delivery order (round, then table order). Each round's new keys are matched
against each other (``candidate_pairs``) and against every earlier key (``cross_candidates``);
candidates are verified by estimated Jaccard and, within ``margin_sd`` standard errors of the
threshold, by exact Jaccard of their shingle sets (shingles computed only for those pairs'
endpoints). Finding pairs the way clusters are built (``dedup.cluster_keys``) makes the pairs of
earlier rounds independent of later ones, so they are kept in ``data/cache/minhash_pairs.parquet``
with a digest of the keys they index and the parameters; the next build, when its keys start
with the same whole rounds, matches only its new rounds. The result is the same as a build from
nothing (``tests/test_dedup.py``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel import lsh, minhash, records
from flywheel.io import write_parquet
from flywheel.jaccard import DEFAULT_MARGIN_SD, _agreements, _exact, _verified

Ints = npt.NDArray[np.int64]
Sigs = npt.NDArray[np.uint32]
ShinglesOf = Callable[[Ints], minhash.Shingles]
_META = b"flywheel.dedup.pairs"
_NONE: Ints = np.zeros((0, 2), dtype=np.int64)  # no pairs


def verify(
    sigs: Sigs,
    candidates: Ints,
    threshold: float,
    mh: minhash.MinHashParams,
    shingles_of: ShinglesOf,
) -> Ints:
    """The ``candidates`` (key ordinals) whose Jaccard reaches ``threshold``."""
    if not len(candidates):
        return candidates
    estimate = _agreements(sigs, sigs, candidates[:, 0], candidates[:, 1])

    def exact(unsure: Ints) -> npt.NDArray[np.float64]:
        involved, local = np.unique(candidates[unsure], return_inverse=True)
        local = local.reshape(-1, 2)
        shingles = shingles_of(involved)
        return _exact(shingles, shingles, local[:, 0], local[:, 1])

    keep = _verified(estimate, threshold, mh.num_perm, DEFAULT_MARGIN_SD, exact)
    return candidates[keep]


def _round_pairs(sigs: Sigs, start: int, stop: int, bands: int, rows: int) -> Ints:
    """Candidates of keys ``start:stop`` among themselves and against keys ``:start``."""
    inner = minhash.candidate_pairs(sigs[start:stop], bands, rows) + start
    if start == 0:
        return inner
    cross = minhash.cross_candidates(sigs[start:stop], sigs[:start], bands, rows)
    cross = np.stack((cross[:, 1], cross[:, 0] + start), axis=1)  # (earlier, new): i < j
    return np.concatenate((inner, cross))


def _rounds_pairs(sigs: Sigs, bounds: list[int], bands: int, rows: int) -> Ints:
    """``_round_pairs`` of every round, with one LSH pass over all keys instead of one per round.

    A bucket of at most ``DEFAULT_MAX_BUCKET`` keys yields all its pairs however the rounds
    split it (each pair within a round, or across two), so one pass gives those. A larger
    bucket yields pairs that depend on which keys share it in each round's call, so its keys
    alone go through the rounds again: every call then sees each such bucket whole, in the same
    order, and gives the same pairs (tests/test_dedup.py holds the two ways equal).
    """
    small, big = lsh.small_bucket_pairs(sigs, bands, rows)
    sub_bounds = np.searchsorted(big, bounds).tolist()
    parts = [
        big[_round_pairs(sigs[big], start, stop, bands, rows)]
        for start, stop in itertools.pairwise(sub_bounds)
        if stop > start
    ]
    found = np.concatenate([small, *parts]) if parts else small
    return lsh._unique_pairs(found[:, 0], found[:, 1], max(len(sigs), 1)) if len(found) else found


def settings_of(mh: minhash.MinHashParams, threshold: float) -> dict[str, object]:
    return {"minhash": mh.to_dict(), "threshold": threshold, "margin_sd": DEFAULT_MARGIN_SD}


def _read(cache: Path) -> tuple[dict[str, object], Ints] | None:
    """The cached pairs and their metadata (None: no readable cache)."""
    if not cache.exists():
        return None
    try:
        table = pq.read_table(cache)
        meta = json.loads((table.schema.metadata or {})[_META])
    except (OSError, KeyError, ValueError, pa.ArrowInvalid):
        return None
    pairs = np.stack((table.column("a").to_numpy(), table.column("b").to_numpy()), axis=1)
    return meta, pairs.astype(np.int64)


def _load(
    cache: Path, keys: pa.Array, bounds: list[int], settings: dict[str, object]
) -> tuple[int, Ints]:
    """How many leading keys the cached pairs cover (0: none usable), and those pairs."""
    found = _read(cache)
    if found is None:
        return 0, _NONE
    meta, pairs = found
    n = meta.get("keys", -1)
    if meta.get("settings") != settings or n not in bounds or not isinstance(n, int):
        return 0, _NONE
    if n > len(keys) or meta.get("digest") != records.strings_digest(keys.slice(0, n)):
        return 0, _NONE
    return n, pairs


def cached(cache: Path, n: int, digest: str, settings: dict[str, object]) -> Ints | None:
    """The cached pairs when they are those of ``n`` keys whose ``strings_digest`` is
    ``digest``, found with ``settings`` (``flywheel.dedup_round``); else None."""
    found = _read(cache)
    if found is None:
        return None
    meta, pairs = found
    if (meta.get("keys"), meta.get("digest"), meta.get("settings")) != (n, digest, settings):
        return None
    return pairs


def save(cache: Path, pairs: Ints, digest: str, n: int, settings: dict[str, object]) -> None:
    """Keep ``pairs`` of ``n`` keys (``digest``: their ``strings_digest``) for the next build."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    meta = {"keys": n, "digest": digest, "settings": settings}
    table = pa.table({"a": pa.array(pairs[:, 0]), "b": pa.array(pairs[:, 1])})
    write_parquet(cache, table, metadata={_META: json.dumps(meta, sort_keys=True).encode()})


def find(
    sigs: Sigs,
    first_round: Ints,
    keys: pa.Array,
    threshold: float,
    mh: minhash.MinHashParams,
    shingles_of: ShinglesOf,
    cache: Path | None,
) -> tuple[Ints, int]:
    """Verified pairs ``(i, j)``, ``i < j``, sorted; and how many keys' pairs came from ``cache``.

    ``sigs``, ``first_round`` and ``keys`` are in first-delivery order; ``shingles_of(keys)``
    gives the shingle sets of key ordinals (for the exact check). The candidates of every round
    not in the cache are verified together, so a key's shingles are computed at most once.
    """
    n = len(keys)
    bands, rows = minhash.lsh_params(threshold, mh.num_perm)
    change = np.flatnonzero(np.diff(first_round)) + 1
    bounds = [0, *change.tolist(), n] if n else [0]
    settings = settings_of(mh, threshold)
    done, pairs = _load(cache, keys, bounds, settings) if cache is not None else (0, _NONE)
    if done == 0 and len(bounds) > 2:  # every round to match: one pass (``_rounds_pairs``)
        candidates = [_rounds_pairs(sigs, bounds, bands, rows)]
    else:
        candidates = [
            _round_pairs(sigs, start, stop, bands, rows)
            for start, stop in itertools.pairwise(bounds)
            if start >= done and stop > start
        ]
    fresh = np.concatenate(candidates) if candidates else _NONE
    found = np.concatenate((pairs, verify(sigs, fresh, threshold, mh, shingles_of)))
    out = found[np.lexsort((found[:, 1], found[:, 0]))] if len(found) else found
    if cache is not None and done < n:
        save(cache, out, records.strings_digest(keys), n, settings)
    return out, done
