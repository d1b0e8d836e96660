"""flywheel.file_hashes: a file is read again exactly when its stat says it may have changed."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from flywheel import file_hashes


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files ``sha256_files`` reads, in order; records are trusted however fresh the files
    (the racy guard has its own tests)."""
    monkeypatch.setattr(file_hashes, "_file_clock", lambda folder: None)
    monkeypatch.setattr(file_hashes, "RACY_NS", -(10**15))
    seen: list[Path] = []
    real = file_hashes.sha256_file

    def counting(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(file_hashes, "sha256_file", counting)
    return seen


def test_unchanged_files_are_not_read_again(tmp_path: Path, read: list[Path]) -> None:
    files = [tmp_path / f"f{i}.jsonl" for i in range(3)]
    for i, f in enumerate(files):
        f.write_text(f"row {i}\n" * (i + 1))
    cache = tmp_path / ".flywheel" / "hashes.json"
    assert file_hashes.sha256_files(files, 2, cache) == [sha(f) for f in files]
    assert sorted(read) == files
    read.clear()
    assert file_hashes.sha256_files(files, 2, cache) == [sha(f) for f in files]
    assert read == []


def test_a_rewritten_file_of_the_same_size_is_read_again(tmp_path: Path, read: list[Path]) -> None:
    f = tmp_path / "export.jsonl"
    f.write_text("label: ok\n")
    cache = tmp_path / "hashes.json"
    file_hashes.sha256_files([f], 1, cache)
    read.clear()
    before = f.stat()
    f.write_text("label: no\n")  # same size, same inode
    # as a write in a later tick of the file clock leaves it (within one tick, the racy guard
    # of the next test is what catches it)
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    assert file_hashes.sha256_files([f], 1, cache) == [sha(f)]
    assert read == [f]


def test_a_replaced_file_with_the_old_mtime_is_read_again(tmp_path: Path, read: list[Path]) -> None:
    f = tmp_path / "export.jsonl"
    f.write_text("aaaa\n")
    cache = tmp_path / "hashes.json"
    file_hashes.sha256_files([f], 1, cache)
    st = f.stat()
    other = tmp_path / "new.jsonl"
    other.write_text("bbbb\n")

    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    other.replace(f)  # same size, same mtime, another inode (as rsync -t leaves it)
    read.clear()
    assert file_hashes.sha256_files([f], 1, cache) == [sha(f)]
    assert read == [f]


def test_a_file_changed_within_a_tick_of_hashing_is_read_again(tmp_path: Path) -> None:
    """The racy case: file times tick coarsely, so a write right after hashing can leave the
    stat unchanged. With the default guard a just-written file is never taken from the record."""
    f = tmp_path / "export.jsonl"
    cache = tmp_path / "hashes.json"
    for content in ("label: ok\n", "label: no\n", "label: ok\n"):
        f.write_text(content)
        assert file_hashes.sha256_files([f], 1, cache) == [sha(f)]


def counted(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    seen: list[Path] = []
    real = file_hashes.sha256_file
    monkeypatch.setattr(file_hashes, "sha256_file", lambda p: seen.append(p) or real(p))
    return seen


@pytest.mark.parametrize(
    ("clock_after_change", "same_device", "read_again"),
    [
        (0, True, True),  # changed in the tick the run began: not settled
        (1, True, False),  # changed before the run began, by the file system's clock
        (1, False, True),  # another file system: the machine's clock and its margin decide
    ],
)
def test_a_record_is_trusted_only_for_a_file_settled_before_the_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock_after_change: int,
    same_device: bool,
    read_again: bool,
) -> None:
    f = tmp_path / "export.jsonl"
    f.write_text("label: ok\n")
    st = f.stat()
    clock = SimpleNamespace(
        st_mtime_ns=st.st_ctime_ns + clock_after_change, st_dev=st.st_dev + (not same_device)
    )
    monkeypatch.setattr(file_hashes, "_file_clock", lambda folder: clock)
    read = counted(monkeypatch)
    cache = tmp_path / "hashes.json"
    file_hashes.sha256_files([f], 1, cache)
    file_hashes.sha256_files([f], 1, cache)
    assert read == [f, f] if read_again else read == [f]


def test_the_file_system_clock_settles_a_file_written_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On this machine's file system, unpatched: a file written a moment before the run is
    trusted the next time (the machine-clock margin alone would distrust it for a second)."""
    f = tmp_path / "export.jsonl"
    f.write_text("label: ok\n")
    time.sleep(0.1)  # file system clocks tick every few milliseconds
    read = counted(monkeypatch)
    cache = tmp_path / ".flywheel" / "hashes.json"
    file_hashes.sha256_files([f], 1, cache)
    file_hashes.sha256_files([f], 1, cache)
    assert read == [f]


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[1, 2]",
        '{"x": [1]}',
        '{"files": {"F": null}}',
        '{"files": 3}',
        '{"files": {"F": [1, 2, 3, 4, "h", false]}}',
    ],
)
def test_an_unreadable_cache_means_hashing(tmp_path: Path, read: list[Path], content: str) -> None:
    f = tmp_path / "x"
    f.write_text("hello\n")
    cache = tmp_path / "hashes.json"
    cache.write_text(content.replace("F", str(f)))
    assert file_hashes.sha256_files([f], 1, cache) == [sha(f)]
    assert read == [f]
    assert file_hashes.sha256_files([f], 1, cache) == [sha(f)]
    assert read == [f]  # the second call used the record the first wrote
