"""flywheel.dedup_texts: kept texts come back for their keys, whatever the segments."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from flywheel import dedup_texts


def keep(folder: Path, keys: list[str], replace: bool = False) -> None:
    dedup_texts.add(pa.array(keys), pa.array([f"text of {k}" for k in keys]), folder, replace)


def look(folder: Path, keys: list[str]) -> dict[str, str]:
    found, texts = dedup_texts.lookup(pa.array(keys, pa.string()), folder)
    hits = [k for k, f in zip(keys, found.tolist(), strict=True) if f]
    return dict(zip(hits, texts.to_pylist(), strict=True))


def test_texts_come_back_for_their_keys_across_segments(tmp_path: Path) -> None:
    keep(tmp_path, ["a", "b"])
    keep(tmp_path, ["c"])
    assert look(tmp_path, ["c", "x", "a", "c"]) == {"c": "text of c", "a": "text of a"}
    assert look(tmp_path, []) == {}
    assert look(tmp_path / "none", ["a"]) == {}


def test_replace_drops_the_texts_kept_before(tmp_path: Path) -> None:
    keep(tmp_path, ["a", "b"])
    keep(tmp_path, ["c"], replace=True)
    assert look(tmp_path, ["a", "b", "c"]) == {"c": "text of c"}
    assert len(list(tmp_path.glob("*.arrow"))) == 1


def test_segments_merge_past_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedup_texts, "MAX_SEGMENTS", 3)
    for k in "abcde":
        keep(tmp_path, [k])
    assert len(list(tmp_path.glob("*.arrow"))) <= 3
    assert look(tmp_path, list("abcde")) == {k: f"text of {k}" for k in "abcde"}


@pytest.mark.parametrize("damage", ["torn", "empty", "other columns"])
def test_a_damaged_segment_is_skipped(tmp_path: Path, damage: str) -> None:
    keep(tmp_path, ["a"])
    keep(tmp_path, ["b"])
    first = sorted(tmp_path.glob("*.arrow"))[0]
    if damage == "torn":
        first.write_bytes(first.read_bytes()[:30])
    elif damage == "empty":
        first.write_bytes(b"")
    else:
        with (
            pa.OSFile(str(first), "wb") as f,
            pa.ipc.new_file(f, pa.schema([("k", pa.int64())])) as w,
        ):
            w.write_table(pa.table({"k": [1]}))
    assert look(tmp_path, ["a", "b"]) == {"b": "text of b"}
