"""sha256 of files, remembered by their stat between runs, as git's index and DVC's state do.

Ingest fingerprints every raw export on every build; at a million records that is a gigabyte
hashed, half a second of every round even when one small export is new. A file whose size,
modification time, inode and change time (nanoseconds) are those recorded with its hash is not
read again. Any write to a file changes its modification or change time, and a replaced file
has another inode, so a changed file is always hashed again, with one exception that git calls
"racy": file times tick coarsely (a few milliseconds), so a file written again within the tick
in which it was hashed keeps its times. A record is therefore trusted only for files whose
change time was at least ``RACY_NS`` before the hashing run; fresher ones are hashed again
next time too. The record lives in
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

from flywheel.io import atomic_open, sha256_file

CACHE = Path(".flywheel/file-hashes.json")
RACY_NS = 1_000_000_000


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def sha256_files(paths: Sequence[Path], threads: int, cache: Path = CACHE) -> list[str]:
    """The sha256 of each file; files whose stat matches ``cache`` are not read. Files are
    hashed on ``threads`` threads (hashlib releases the GIL)."""
    try:
        record = json.loads(cache.read_text(encoding="utf-8"))
        taken, known = int(record["taken_ns"]), dict(record["files"])
    except (OSError, ValueError, TypeError, KeyError):
        taken, known = 0, {}
    now = time.time_ns()
    stats = [_stat(p) for p in paths]
    names = [os.path.abspath(p) for p in paths]
    out: list[str | None] = []
    for name, st in zip(names, stats, strict=True):
        entry = known.get(name)
        ok = isinstance(entry, list) and len(entry) == 5 and entry[:4] == st
        ok = ok and st[3] < taken - RACY_NS  # not changed within a tick of being hashed
        out.append(str(entry[4]) if ok and entry is not None else None)
    todo = [i for i, h in enumerate(out) if h is None]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for i, digest in zip(todo, pool.map(sha256_file, [paths[i] for i in todo]), strict=True):
            out[i] = digest
    hashes = [h for h in out if h is not None]
    # A file written while it was hashed has a newer stat than the one recorded: it is hashed
    # again next time.
    fresh = {n: [*s, h] for n, s, h in zip(names, stats, hashes, strict=True)}
    if todo or fresh != known:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(cache) as f:
                f.write(json.dumps({"taken_ns": now, "files": fresh}, sort_keys=True))
        except OSError:  # a read-only working copy: hash every time
            pass
    return hashes
