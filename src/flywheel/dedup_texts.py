"""The text each dedup key was signed from, kept on local disk for the exact check of later
rounds.

A new round's keys near the threshold with earlier keys are decided by exact Jaccard, which
needs the earlier keys' texts. At a million records those were about 13,000 keys spread over
every partition, and Parquet reads whole row groups: reading them cost a round about a second,
most of the dedup stage's own work. So the texts a build signs are kept here, uncompressed and
memory-mapped (Arrow IPC segments of ``key`` and ``text``), where any few are read at once.

A key is the hash of its normalized text, so any text of a key gives the key's shingles: the
text kept is the one its first record had when it was signed. The cache is local
(``.flywheel/dedup-texts/``): derived, not versioned, safe to delete (the texts are read from
the records again); about as large as the texts (0.5 GB at a million records). Segments are
appended per build; past ``MAX_SEGMENTS`` they are merged into one, and a build that signs
every key replaces them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from flywheel import records
from flywheel.io import LOCAL, read_arrow, write_arrow

CACHE = LOCAL / "dedup-texts"
SUFFIX = ".arrow"
MAX_SEGMENTS = 16
SCHEMA = pa.schema([("key", pa.string()), ("text", pa.string())])


def _segments(folder: Path) -> list[Path]:
    return sorted(folder.glob("*" + SUFFIX)) if folder.is_dir() else []


def _read(path: Path) -> pa.Table | None:
    try:
        table = read_arrow(path)
    except (OSError, pa.ArrowInvalid):
        return None  # torn or foreign: its keys are read from the records
    return table if table.schema.equals(SCHEMA) else None


def lookup(keys: pa.Array, folder: Path = CACHE) -> tuple[npt.NDArray[np.bool_], pa.Array]:
    """Which of ``keys`` have a kept text, and those texts (in the order of ``keys``)."""
    tables = [t for t in map(_read, _segments(folder)) if t is not None]
    if not tables or not len(keys):
        return np.zeros(len(keys), dtype=bool), pa.array([], pa.string())
    kept = pa.concat_tables(tables)
    at = records.positions(keys, kept.column("key"))
    found = at >= 0
    return found, records.one_array(kept.column("text").take(pa.array(at[found])))


def add(keys: pa.Array, texts: pa.Array, folder: Path = CACHE, replace: bool = False) -> None:
    """Keep ``texts`` for ``keys`` (``replace``: instead of every text kept so far). A write
    that fails leaves the cache as it was: the exact check then reads the records."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        present = _segments(folder)
        table = pa.table({"key": keys.cast(pa.string()), "text": texts.cast(pa.string())})
        if not replace and len(present) >= MAX_SEGMENTS:
            kept = [t for t in map(_read, present) if t is not None]
            table, replace = pa.concat_tables([*kept, table]), True
        number = int(present[-1].stem) + 1 if present else 1
        write_arrow(folder / f"{number:06d}{SUFFIX}", table.cast(SCHEMA))
        if replace:
            for path in present:
                path.unlink(missing_ok=True)
    except (OSError, ValueError):  # unwritable, or a file not named by this module
        pass
