"""sha256 of files, remembered by their stat between runs, as git's index and DVC's state do.

Ingest fingerprints every raw export on every build; at a million records that is a gigabyte
hashed, half a second of every round even when one small export is new. A file whose size,
modification time, inode and change time (nanoseconds) are those recorded with its hash is not
read again. Any write to a file changes its modification or change time, and a replaced file
has another inode, so a changed file is always hashed again, with one exception that git calls
"racy": file times tick coarsely (a few milliseconds), so a file written again within the tick
in which it was hashed keeps its times. So a record is trusted only for a file that had *settled*
when the run that hashed it began: its change time is older than that moment, read off the file
system's own clock (the time it stamps on ``.flywheel/clock``, touched as the run begins; git
compares with its index file's time for the same reason). A write after that moment gets a
stamp at least as late, so no write can hide behind a trusted record. For a file on another
file system, whose clock may differ (a network share), the machine's clock is used with a
margin of ``RACY_NS``. The record lives in
``.flywheel/file-hashes.json``: local to one working copy (stat values mean nothing elsewhere),
not versioned, and safe to delete.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flywheel.io import LOCAL, atomic_open, sha256_file

CACHE = LOCAL / "file-hashes.json"
RACY_NS = 1_000_000_000


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def _file_clock(folder: Path) -> os.stat_result | None:
    """The stat of ``folder/clock`` just touched: its modification time is the file system's
    clock now, at the file system's own resolution (None: it cannot be written)."""
    probe = folder / "clock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.touch()
        os.utime(probe)  # now, by the file system's clock (touch keeps an existing file's times)
        return probe.stat()
    except OSError:
        return None


def sha256_files(paths: Sequence[Path], threads: int, cache: Path = CACHE) -> list[str]:
    """The sha256 of each file; files whose stat matches ``cache`` are not read. Files are
    hashed on ``threads`` threads (hashlib releases the GIL)."""
    try:
        record = json.loads(cache.read_text(encoding="utf-8"))
        known = dict(record["files"])
    except (OSError, ValueError, TypeError, KeyError):
        known = {}
    now, clock = time.time_ns(), _file_clock(cache.parent)
    stats = [path.stat() for path in paths]
    names = [os.path.abspath(p) for p in paths]
    out: list[str | None] = []
    for name, st in zip(names, stats, strict=True):
        entry = known.get(name)
        ok = (
            isinstance(entry, list)
            and len(entry) == 6
            and entry[:4] == _key(st)
            and entry[5] is True
        )
        out.append(str(entry[4]) if ok and entry is not None else None)
    todo = [i for i, h in enumerate(out) if h is None]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for i, digest in zip(todo, pool.map(sha256_file, [paths[i] for i in todo]), strict=True):
            out[i] = digest
    hashes = [h for h in out if h is not None]
    # Whether each file had settled when this run began (see the module's docstring); a file
    # written while it was hashed has a newer stat than the one recorded: hashed again.
    settled = [
        st.st_ctime_ns < clock.st_mtime_ns
        if clock is not None and st.st_dev == clock.st_dev
        else st.st_ctime_ns < now - RACY_NS
        for st in stats
    ]
    fresh = {
        n: [*_key(st), h, ok] for n, st, h, ok in zip(names, stats, hashes, settled, strict=True)
    }
    if todo or fresh != known:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(cache) as f:
                f.write(json.dumps({"files": fresh}, sort_keys=True))
        except OSError:  # a read-only working copy: hash every time
            pass
    return hashes
