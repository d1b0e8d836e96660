"""The round's layers: records written once, patches with the columns each stage decides."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel import io, records, store
from flywheel.errors import InputError
from flywheel.io import write_parquet
from records_factory import record, table


def test_each_column_comes_from_the_newest_layer_that_has_it(tmp_path: Path) -> None:
    base = table([record("s/1"), record("s/2", response="Other.")])
    folder = tmp_path / "ingest"
    write_parquet(folder / store.partition_name(1, "e"), base)
    label = store.patch(records.replace(base, label=["ok", None]), ["label"])
    bucket = store.patch(records.replace(base, label=["tone", "tone"]), ["label"])
    write_parquet(tmp_path / "label.parquet", label)
    write_parquet(tmp_path / "bucket.parquet", bucket)
    layers = [folder, tmp_path / "label.parquet", tmp_path / "bucket.parquet"]
    got = store.load(layers, ["id", "label", "response"])
    assert got.to_pylist() == [
        {"id": "s/1", "label": "tone", "response": "It ships Monday."},
        {"id": "s/2", "label": "tone", "response": "Other."},
    ]
    whole = store.load(layers[:2])
    assert whole.schema == records.SCHEMA and whole.column("label").to_pylist() == ["ok", None]


def test_a_patch_written_for_other_records_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ingest"
    write_parquet(folder / store.partition_name(1, "e"), table([record("s/1"), record("s/2")]))
    stale = pa.table({"id": ["s/1", "s/3"], "label": ["ok", "ok"]})
    write_parquet(tmp_path / "label.parquet", stale)
    with pytest.raises(InputError, match=r"label.parquet was written for other records"):
        store.load([folder, tmp_path / "label.parquet"], ["label"])


def test_partitions_read_in_canonical_order(tmp_path: Path) -> None:
    folder = tmp_path / "ingest"
    write_parquet(folder / store.partition_name(2, "a"), table([record("s/9", round=2)]))
    write_parquet(folder / store.partition_name(1, "b"), table([record("s/5")]))
    assert store.read_layer(folder, ["id"]).column("id").to_pylist() == ["s/5", "s/9"]


def test_keep_freed_memory_tunes_glibc_malloc() -> None:
    import platform

    from flywheel.memory import keep_freed_memory

    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")


def test_outputs_get_the_mode_of_any_new_file(tmp_path: Path) -> None:
    """Atomic writes go through mkstemp, whose files are private; outputs must not be."""
    from flywheel import io

    old = os.umask(0o022)
    try:
        io.new_file_mode.cache_clear()
        io.write_json(tmp_path / "shared.json", {"a": 1})
        assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o644
        os.umask(0o077)
        io.new_file_mode.cache_clear()
        io.write_json(tmp_path / "private.json", {"a": 1})
        assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)
        io.new_file_mode.cache_clear()


WORDS = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "", "é"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, max_size=8), st.lists(WORDS, max_size=12), st.integers(0, 12))
def test_positions_equal_index_in(
    values: list[str | None], among: list[str | None], cut: int
) -> None:
    """``records.positions`` hashes the values, not ``among``, and answers as ``index_in``:
    first occurrences, repeated values, nulls, and ``among`` in two chunks."""
    chunked = pa.chunked_array(
        [pa.array(among[:cut], pa.string()), pa.array(among[cut:], pa.string())]
    )
    want = pc.index_in(pa.array(values, pa.string()), value_set=pa.array(among, pa.string()))
    got = records.positions(pa.array(values, pa.string()), chunked)
    assert got.tolist() == [-1 if w is None else w for w in want.to_pylist()]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 19), max_size=25), st.integers(1, 25))
def test_reading_rows_reads_their_row_groups(
    tmp_path_factory: pytest.TempPathFactory, rows: list[int], group: int
) -> None:
    """``store._read_rows`` (whole groups, in any order, repeated) equals taking the rows of
    the whole file; with every group needed it reads the file."""
    path = tmp_path_factory.mktemp("groups") / "part.parquet"
    whole = pa.table({"id": [f"r{i}" for i in range(20)], "n": list(range(20))})
    write_parquet(path, whole, row_group=group)
    wanted = np.array(rows, dtype=np.int64)
    assert store._read_rows(path, ["n", "id"], wanted).equals(
        whole.select(["n", "id"]).take(pa.array(wanted, pa.int64()))
    )


def test_footers_of_inputs_are_read_once_per_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``io.footer`` keeps the footer of a file settled before the process began, per version
    (inode, size, times): a rewrite is read again, and a file changed since the process began is
    read every time."""
    path = tmp_path / "part.parquet"
    write_parquet(path, pa.table({"id": ["a", "b"]}), {b"k": b"1"})
    read: list[str] = []
    real = pq.read_metadata
    monkeypatch.setattr(pq, "read_metadata", lambda p: read.append(str(p)) or real(p))
    assert [io.read_schema(path).metadata for _ in range(2)] == [{b"k": b"1"}] * 2
    assert len(read) == 2  # written after the process began: never kept
    monkeypatch.setattr(io, "_SETTLED_NS", time.time_ns() + 10**12)  # as if from before
    read.clear()
    assert [io.footer(path).num_rows for _ in range(3)] == [2, 2, 2]
    assert len(read) == 1
    write_parquet(path, pa.table({"id": ["a", "b", "c"]}), {b"k": b"2"})
    assert io.footer(path).num_rows == 3
    assert io.read_schema(path).metadata == {b"k": b"2"}
    assert len(read) == 2


@given(st.lists(st.booleans(), max_size=12))
def test_interleave_puts_hits_and_misses_back_in_mask_order(mask: list[bool]) -> None:
    hits = [f"hit {i}" for i in range(sum(mask))]
    misses = [f"miss {i}" for i in range(len(mask) - sum(mask))]
    want, h, m = [], iter(hits), iter(misses)
    for found in mask:
        want.append(next(h) if found else next(m))
    flags = np.array(mask, dtype=bool)
    got = records.interleave(
        flags, pa.array(hits, pa.string()), pa.array(misses, pa.large_string())
    )
    assert got.to_pylist() == want
    table = records.interleave(
        flags, pa.table({"t": pa.array(hits, pa.string())}), pa.table({"t": pa.array(misses)})
    )
    assert table.column("t").to_pylist() == want
