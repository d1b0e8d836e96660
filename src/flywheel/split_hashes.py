"""The number in [0, 1) that decides a cluster's split (and whether sampling keeps it), and a
cache of it per partition.

``unit_hash(seed, cluster_id)`` is BLAKE2b of the seed and the cluster id: a pure function, so a
cluster's split never changes between rounds and a fresh clone needs no state. Hashing every
open record's cluster is most of split's own work at a million records (0.6 s for 350,000
clusters, twice with sampling weights), yet a round changes the clusters of few partitions. So
``Cached`` keeps, per partition and seed, the hashes it computed, beside a digest of the seed
and the partition's cluster ids; a partition whose ids are unchanged reuses them. The files
live in ``.flywheel/split-hashes/``: local to the working copy, not versioned, and safe to
delete (the hashes are computed again).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import records, store
from flywheel.ingest_bytes import Bytes
from flywheel.io import LOCAL, atomic_open

Floats = np.ndarray[Any, np.dtype[np.float64]]
Bools = np.ndarray[Any, np.dtype[np.bool_]]
CACHE = LOCAL / "split-hashes"


def unit_hash(seed: int, key: str) -> float:
    """A uniform number in [0, 1) from ``seed`` and ``key``."""
    digest = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def unit_hashes(seed: int, keys: pa.ChunkedArray | pa.Array, where: Bools | None = None) -> Floats:
    """``unit_hash`` of every key, computing each distinct key once; with ``where``, only of
    those rows (the others get NaN)."""
    if where is not None:
        out = np.full(len(keys), np.nan)
        out[where] = unit_hashes(seed, pc.filter(keys, pa.array(where)))
        return out
    encoded = pc.dictionary_encode(pc.fill_null(keys, ""))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    distinct = _unit_hashes(seed, encoded.dictionary)
    return np.asarray(distinct[encoded.indices.to_numpy(zero_copy_only=False)], dtype=np.float64)


def _unit_hashes(seed: int, keys: pa.Array) -> Floats:
    """``unit_hash`` of each key: the messages built and the digests read in bulk, only the
    hashing itself per key (the per-key Python of ``unit_hash`` cost 4x as much)."""
    digests = Bytes(pc.binary_join_element_wise(str(seed), keys, "\x1f")).blake2b(8)
    # int.from_bytes(digest, "big") / 2**64: both divisions round the same 64-bit integer once.
    return np.asarray(np.frombuffer(digests, dtype=">u8").astype(np.float64) / 2.0**64)


class Cached:
    """``unit_hashes`` over a table of partitions (``files``, rows in turn), remembered per
    partition and seed in ``folder``. ``tidy`` removes the files this build did not use."""

    def __init__(self, files: Sequence[Path], folder: Path = CACHE) -> None:
        self.files, self.folder = list(files), folder
        self.spans = store.spans(self.files)
        self.used: set[str] = set()
        self.digests: dict[Path, str] = {}  # each partition's cluster ids, hashed once

    def __call__(self, seed: int, keys: pa.ChunkedArray | pa.Array, where: Bools) -> Floats:
        out = np.full(len(keys), np.nan)
        for file, (offset, n) in zip(self.files, self.spans, strict=True):
            mine = where[offset : offset + n]
            if mine.any():
                out[offset : offset + n] = self._partition(seed, file, keys.slice(offset, n), mine)
        return out

    def _partition(
        self, seed: int, file: Path, keys: pa.ChunkedArray | pa.Array, where: Bools
    ) -> Floats:
        name = f"{file.name}.{seed}.npz"
        self.used.add(name)
        if file not in self.digests:
            self.digests[file] = records.strings_digest(keys)
        digest = hashlib.sha256(f"{seed}\0{self.digests[file]}".encode()).hexdigest()
        known = np.full(len(keys), np.nan)
        try:
            # Opened here: np.load leaves the file open when it is no zip file.
            with (self.folder / name).open("rb") as f, np.load(f, allow_pickle=False) as found:
                if str(found["digest"]) == digest and found["u"].shape == known.shape:
                    known = np.array(found["u"], dtype=np.float64)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # none yet, or torn: computed again
        missing = where & np.isnan(known)
        if missing.any():
            known[missing] = unit_hashes(seed, keys, missing)[missing]
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with atomic_open(self.folder / name, "wb") as out:
                    np.savez(out, digest=np.array(digest), u=known)
            except OSError:  # a read-only working copy: computed every time
                pass
        return np.where(where, known, np.nan)

    def tidy(self) -> None:
        """Remove the files of partitions and seeds this build did not ask for."""
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.name not in self.used and path.suffix == ".npz":
                    path.unlink(missing_ok=True)
