"""``split_hashes.Cached`` gives ``unit_hashes`` exactly, computing only what it has not kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel import split_hashes


def partitions(folder: Path, sizes: list[int]) -> list[Path]:
    """Parquet files of ``sizes`` rows (``Cached`` reads only their row counts)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, n in enumerate(sizes):
        path = folder / f"r0001-p{i}.records.parquet"
        pq.write_table(pa.table({"id": pa.array([f"x{j}" for j in range(n)])}), path)
        files.append(path)
    return files


def same(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each ``unit_hashes`` call of ``Cached`` asked for."""
    seen: list[int] = []
    real = split_hashes.unit_hashes

    def counted(seed: int, keys: Any, where: Any = None) -> Any:
        if where is not None:  # not its own inner call
            seen.append(int(where.sum()))
        return real(seed, keys, where)

    monkeypatch.setattr(split_hashes, "unit_hashes", counted)
    return seen


KEYS = st.lists(st.sampled_from(["c-1", "c-2", "c-3", "", None, "c-é"]), min_size=12, max_size=12)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    keys=KEYS,
    first=st.lists(st.booleans(), min_size=12, max_size=12),
    second=st.lists(st.booleans(), min_size=12, max_size=12),
    seed=st.integers(0, 3),
)
def test_cached_equals_unit_hashes_for_any_rows_asked(
    tmp_path_factory: pytest.TempPathFactory,
    keys: list[str | None],
    first: list[bool],
    second: list[bool],
    seed: int,
) -> None:
    root = tmp_path_factory.mktemp("cached")
    files = partitions(root / "parts", [5, 0, 7])
    column = pa.array(keys, pa.string())
    for mask in (first, second, first):  # a second build asks for other rows too
        where = np.array(mask)
        got = split_hashes.Cached(files, root / "cache")(seed, column, where)
        assert same(got, split_hashes.unit_hashes(seed, column, where))


def test_unchanged_partitions_are_not_hashed_again(tmp_path: Path, calls: list[int]) -> None:
    files = partitions(tmp_path / "parts", [4, 3])
    cache = tmp_path / "cache"
    keys = pa.array(["a", "b", "c", "d", "e", "f", "g"])
    every = np.ones(7, dtype=bool)
    want = split_hashes.unit_hashes(9, keys, every)
    calls.clear()
    assert same(split_hashes.Cached(files, cache)(9, keys, every), want)
    assert calls == [4, 3]
    assert same(split_hashes.Cached(files, cache)(9, keys, every), want)
    assert calls == [4, 3]  # both partitions kept
    # The second partition's clusters change: it alone is hashed again, and right.
    moved = pa.array(["a", "b", "c", "d", "e", "x", "g"])
    assert same(
        split_hashes.Cached(files, cache)(9, moved, every), split_hashes.unit_hashes(9, moved)
    )
    assert calls == [4, 3, 3]
    # Another seed is another file.
    assert same(
        split_hashes.Cached(files, cache)(10, moved, every), split_hashes.unit_hashes(10, moved)
    )
    assert calls == [4, 3, 3, 4, 3]


@pytest.mark.parametrize("damage", ["torn", "empty", "other shape"])
def test_a_damaged_file_is_computed_again(tmp_path: Path, damage: str) -> None:
    files = partitions(tmp_path / "parts", [3])
    cache = tmp_path / "cache"
    keys = pa.array(["a", "b", "c"])
    every = np.ones(3, dtype=bool)
    split_hashes.Cached(files, cache)(1, keys, every)
    (kept,) = cache.iterdir()
    if damage == "torn":
        kept.write_bytes(kept.read_bytes()[:40])
    elif damage == "empty":
        kept.write_bytes(b"")
    else:
        with np.load(kept) as found:
            digest = found["digest"]
        np.savez(kept.with_suffix(""), digest=digest, u=np.zeros(2))
    assert same(
        split_hashes.Cached(files, cache)(1, keys, every), split_hashes.unit_hashes(1, keys)
    )


def test_tidy_keeps_only_what_the_build_used(tmp_path: Path) -> None:
    files = partitions(tmp_path / "parts", [2, 2])
    cache = tmp_path / "cache"
    keys = pa.array(["a", "b", "c", "d"])
    every = np.ones(4, dtype=bool)
    split_hashes.Cached(files, cache)(1, keys, every)
    later = split_hashes.Cached(files[:1], cache)
    later(2, keys.slice(0, 2), every[:2])
    later.tidy()
    assert sorted(p.name for p in cache.iterdir()) == [f"{files[0].name}.2.npz"]
