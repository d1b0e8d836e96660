"""Per-partition stage outputs (flywheel.parts): a rebuild recomputes only the partitions whose
inputs changed, and leaves the same bytes as a build from nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_pipeline import copy_sample

from flywheel import parts, pipeline, store
from flywheel.errors import InputError

FOLDERS = (
    "data/interim/label",
    "data/interim/bucket",
    "data/interim/dedup",
    "data/interim/queue",
    "data/cache/queue",
    "data/interim/split",
    "data/splits/train",
    "data/splits/eval",
)
WHOLE = ("data/queue.parquet", "data/queue.jsonl", "data/ledger.parquet")


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy_sample(tmp_path)
    monkeypatch.chdir(tmp_path)
    pipeline.run_all()
    return tmp_path


def files_of(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every per-partition file and the round's whole-queue files: bytes and mtime (ns)."""
    found = [p for folder in FOLDERS for p in sorted((root / folder).glob("*.parquet"))]
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in [*found, *(root / name for name in WHOLE)]
    }


def rebuild_from_nothing(root: Path) -> dict[str, bytes]:
    for folder in FOLDERS:
        shutil.rmtree(root / folder)
    pipeline.run_all()
    return {name: data for name, (data, _) in files_of(root).items()}


def test_a_review_recomputes_only_its_partition(built: Path) -> None:
    before = files_of(built)
    partition = store.partitions(built / "data/interim/ingest")[-1]
    rid = pq.read_table(partition, columns=["id"]).column("id")[0].as_py()
    decision = {
        "decided_at": "2026-12-01T09:00:00Z",
        "guideline_version": "1.0",
        "id": rid,
        "label": "unusable",
        "reviewer": "test",
    }
    (built / "data/reviews/round-9.jsonl").write_text(json.dumps(decision) + "\n")
    pipeline.run_all()
    after = files_of(built)
    assert after.keys() == before.keys()
    stem = partition.name.removesuffix(store.PARTITION_SUFFIX)
    for folder in ("data/interim/label", "data/interim/bucket"):
        changed = [n for n in after if n.startswith(folder) and after[n][1] != before[n][1]]
        assert changed == [f"{folder}/{stem}.parquet"]
    label = pq.read_table(built / f"data/interim/label/{stem}.parquet")
    assert label.column("label")[0].as_py() == "unusable"
    # Files of the stages that decide all records together are rewritten where, and only
    # where, their rows changed.
    for folder in ("data/interim/dedup", "data/interim/split", "data/splits"):
        mine = [n for n in after if n.startswith(folder)]
        assert mine
        for n in mine:
            assert (after[n][1] != before[n][1]) == (after[n][0] != before[n][0]), n
    assert {n: d for n, (d, _) in after.items()} == rebuild_from_nothing(built)


def test_a_new_round_adds_partitions_and_keeps_the_others(built: Path) -> None:
    before = files_of(built)
    raw = built / "data/raw"
    source = raw / "r1-red_team-2026-08-26"
    manifest = yaml.safe_load((source / "manifest.yaml").read_text())
    copy = raw / "r9-red_team-again"
    shutil.copytree(source, copy)
    # The same cases from another source: new ids, texts that duplicate earlier rounds'.
    manifest.update(export_id="r9-red_team-again", source="red_team_b", round=9)
    (copy / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    pipeline.run_all()
    after = files_of(built)
    for folder in ("data/interim/label", "data/interim/bucket"):
        new = sorted(set(n for n in after if n.startswith(folder)) - set(before))
        assert len(new) == 1
        kept = [n for n in before if n.startswith(folder)]
        assert all(after[n][1] == before[n][1] for n in kept)
    assert {n: d for n, (d, _) in after.items()} == rebuild_from_nothing(built)
    shutil.rmtree(copy)  # and a removed export takes its files with it
    pipeline.run_all()
    assert files_of(built).keys() == before.keys()


def test_a_missing_or_stale_partition_file_is_refused(built: Path) -> None:
    layers = pipeline.LAYERS["bucket"]
    first = sorted((built / "data/interim/label").glob("*.parquet"))
    second = first[1].read_bytes()
    first[1].write_bytes(first[0].read_bytes())  # another partition's labels
    with pytest.raises(InputError, match="was written for other records"):
        store.load(layers, ["id", "label"])
    first[1].write_bytes(second)
    first[1].unlink()
    with pytest.raises(InputError, match="is missing"):
        store.load(layers, ["id", "label"])


@given(
    counts=st.lists(
        st.dictionaries(
            st.sampled_from(["records", "status"]),
            st.integers(0, 5),
        ),
        max_size=5,
    )
)
def test_counts_add_like_a_counter(counts: list[dict[str, int]]) -> None:
    nested = [{"n": c.get("records", 0), "by": c} for c in counts]
    total = parts.add(nested)
    assert total.get("n", 0) == sum(c.get("records", 0) for c in counts)
    for name in ("records", "status"):
        expected = sum(c.get(name, 0) for c in counts)
        assert total.get("by", {}).get(name, 0) == expected


@settings(max_examples=50)
@given(
    data=st.lists(st.none() | st.integers(0, 9), min_size=1, max_size=40),
    start=st.integers(0, 39),
    cut=st.integers(0, 40),
)
def test_table_digest_sees_only_the_rows_of_a_slice(
    data: list[int | None], start: int, cut: int
) -> None:
    """A slice of a chunked table hashes as the same rows built afresh, and differently from
    changed rows."""

    def table_of(values: list[int | None]) -> pa.Table:
        text = [None if v is None else str(v) for v in values]
        return pa.table({"x": pa.array(values, pa.int64()), "s": pa.array(text, pa.string())})

    cut = min(cut, len(data))
    whole = pa.concat_tables([table_of(data[:cut]), table_of(data[cut:])])
    start = min(start, len(data))
    rows = data[start : start + 5]
    fresh = table_of(rows)
    assert parts.table_digest(whole.slice(start, 5)) == parts.table_digest(fresh)
    if rows:
        changed = fresh.set_column(0, "x", pa.array([(v or 0) + 1 for v in rows]))
        assert parts.table_digest(changed) != parts.table_digest(fresh)
    mask = np.zeros(len(data), dtype=bool)
    assert parts.mask_digest(mask) != parts.mask_digest(np.zeros(len(data) + 1, dtype=bool))


def test_split_reads_only_the_partitions_whose_inputs_changed(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The train and eval files are keyed by their rows; the index of their inputs
    (data/cache/split.json) spares reading the partitions whose inputs did not change."""
    read: list[Path] = []
    real = store.load

    def spy(layers: list[Path], columns: list[str] | None = None, only: None = None) -> object:
        if layers[0].is_file():
            read.append(layers[0])
        return real(layers, columns, only)

    monkeypatch.setattr(store, "load", spy)
    before = files_of(built)
    pipeline.run_stage("split")
    assert read == []
    (built / "data/cache/split.json").unlink()  # without it, every partition is read, ...
    pipeline.run_stage("split")
    assert sorted(read) == store.partitions(Path("data/interim/ingest"))
    assert files_of(built) == before  # ... and none written: their rows did not change
    read.clear()
    pipeline.run_stage("split")
    assert read == []
