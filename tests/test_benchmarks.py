"""benchmarks/make_records.py and bench_pipeline.py: deterministic, valid, balanced, appendable.

Counts here come from reading the written files directly (JSONL lines, CSV rows), never from
make_records' own bookkeeping or from flywheel's readers.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import PROJECT
from flywheel import exports, pipeline

BENCHMARKS = PROJECT / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mr() -> ModuleType:
    return _load("make_records")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load("bench_pipeline")


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def manifests(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [
        (p.parent, yaml.safe_load(p.read_text(encoding="utf-8")))
        for p in sorted((root / "data" / "raw").glob("*/manifest.yaml"))
    ]


def rows_of(folder: Path, manifest: dict[str, Any]) -> list[str | dict[str, Any]]:
    """Every input row of an export: a dict, or the raw text of a line that is not JSON."""
    path = folder / manifest["file"]
    if manifest["format"] == "jsonl":
        out: list[str | dict[str, Any]] = []
        for line in path.read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append(line)
        return out
    with path.open(encoding="utf-8", newline="") as f:
        return [r for r in csv.DictReader(f) if any((v or "").strip() for v in r.values())]


def input_rows(root: Path) -> int:
    return sum(len(rows_of(folder, m)) for folder, m in manifests(root))


@pytest.fixture(scope="module")
def small(mr: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    mr.generate(root, 300, rounds=3, seed=11)
    return root


def test_generation_is_byte_identical_and_independent_of_jobs(
    mr: ModuleType, small: Path, tmp_path: Path
) -> None:
    mr.generate(tmp_path / "again", 300, rounds=3, seed=11)
    assert files(tmp_path / "again") == files(small)
    done = subprocess.run(
        [
            *(sys.executable, str(BENCHMARKS / "make_records.py"), "--out", str(tmp_path / "jobs")),
            *("--records", "300", "--seed", "11", "--jobs", "2"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert files(tmp_path / "jobs") == files(small)
    mr.generate(tmp_path / "other", 300, rounds=3, seed=12)
    assert files(tmp_path / "other") != files(small)


def test_exports_validate_and_keep_the_samples_formats_and_layouts(small: Path) -> None:
    shipped = {m["source"]: m for _, m in manifests(PROJECT)}
    made = manifests(small)
    assert {m["round"] for _, m in made} == {1, 2, 3}
    assert {m["source"] for _, m in made} == set(shipped)
    for folder, m in made:
        export = exports.load_export(folder)  # schema-checked; raises on a bad manifest
        assert export.export_id == folder.name and export.file.is_file()
        want = shipped[m["source"]]
        assert (m["format"], m["file"], m["fields"]) == (
            want["format"],
            want["file"],
            want["fields"],
        )
        assert m["annotations"]["layout"] == want["annotations"]["layout"]
        if m["annotations"]["layout"] == "wide":
            assert list(m["annotations"]["columns"]) == list(want["annotations"]["columns"])
        if m["format"] == "csv":
            # exactly what Python's csv module writes for the same rows
            text = export.file.read_text(encoding="utf-8")
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(csv.reader(io.StringIO(text)))
            assert buf.getvalue() == text


def test_pipeline_ledger_has_one_row_per_generated_input_row(
    small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    for rel, data in files(small).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "data" / "reviews").mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(root)
    pipeline.run_all()
    ledger = pq.read_table(root / "data" / "ledger.parquet")
    expected = input_rows(root)
    assert expected > 300  # eval_suite's long layout has a row per annotation
    assert ledger.num_rows == expected
    keys = list(
        zip(ledger.column("file").to_pylist(), ledger.column("line").to_pylist(), strict=True)
    )
    assert len(set(keys)) == len(keys)
    per_file = Counter(f for f, _ in keys)
    for folder, m in manifests(root):
        assert per_file[(folder / m["file"]).relative_to(root).as_posix()] == len(
            rows_of(folder, m)
        )


def test_append_round_adds_one_round_and_changes_no_earlier_file(
    mr: ModuleType, small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    for rel, data in files(small).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    before = {k: v for k, v in files(root).items() if k != mr.META}
    mr.append_round(root, percent=10)
    after = files(root)
    assert {k: after[k] for k in before} == before
    old_exports = {p.split("/")[2] for p in before if p.startswith("data/raw/")}
    new = [(folder, m) for folder, m in manifests(root) if folder.name not in old_exports]
    assert new and {m["round"] for _, m in new} == {4}
    for folder, _ in new:
        exports.load_export(folder)
    meta = json.loads((root / mr.META).read_text())
    assert meta["rounds"][-1]["records"] == 30
    records = 0
    for folder, m in new:
        rows = rows_of(folder, m)
        ann = m["annotations"]
        key = ann["item"] if ann["layout"] == "long" else m["fields"]["native_id"]
        records += len({r[key] if isinstance(r, dict) else r for r in rows})
    assert records == 30
    # the new round's ids are new: ingest quarantines nothing as delivered twice
    monkeypatch.chdir(root)
    pipeline.run_stage("ingest")
    quarantine = (root / "data" / "quarantine.jsonl").read_text().splitlines()
    assert not [q for q in quarantine if "already delivered" in q]
    ledger = sorted((root / "data" / "interim" / "ingest").glob("*.rows.parquet"))
    assert sum(pq.read_metadata(f).num_rows for f in ledger) == input_rows(root)


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def test_mix_of_duplicates_defects_and_disagreement(mr: ModuleType, tmp_path: Path) -> None:
    mr.generate(tmp_path, 20_000, rounds=3, seed=3)
    labels = set(yaml.safe_load((tmp_path / "guidelines" / "labels.yaml").read_text())["labels"])
    records: dict[tuple[str, str], dict[str, Any]] = {}
    bad_json = 0
    for folder, m in manifests(tmp_path):
        f, ann = m["fields"], m["annotations"]
        for row in rows_of(folder, m):
            if isinstance(row, str):
                bad_json += 1
                continue
            item = row[ann["item"] if ann["layout"] == "long" else f["native_id"]]
            rec = records.setdefault(
                (folder.name, item),
                {"round": m["round"], "source": m["source"], "labels": [], "flags": set()},
            )
            rec["text"] = (_norm(row[f["prompt"]]), _norm(row[f["response"]] or ""))
            if not row[f["response"]]:
                rec["flags"].add("empty")
            if str(row[f["model_confidence"]]) == "high":
                rec["flags"].add("high")
            if ann["layout"] == "wide":
                rec["labels"] += [row[c] for c in ann["columns"] if row[c]]
            elif ann["layout"] == "long":
                rec["labels"].append(row[ann["label"]])
            else:
                rec["labels"] += [a["label"] for a in row[ann["column"]]]
    n = len(records) + bad_json
    assert n == 20_000
    unknown = sum(1 for r in records.values() if set(r["labels"]) - labels)
    malformed = bad_json + unknown + sum(len(r["flags"]) for r in records.values())
    assert 0.003 * n <= malformed <= 0.008 * n
    assert (
        bad_json
        and unknown
        and all(any(k in r["flags"] for r in records.values()) for k in ("empty", "high"))
    )
    texts = Counter(r["text"] for r in records.values())
    assert 0.025 * n <= sum(c - 1 for c in texts.values()) <= 0.045 * n
    rounds_of: dict[tuple[str, str], set[int]] = {}
    for r in records.values():
        rounds_of.setdefault(r["text"], set()).add(r["round"])
    assert any(len(v) > 1 for v in rounds_of.values())  # duplicates reach across rounds
    clean = [r["labels"] for r in records.values() if not set(r["labels"]) - labels]
    assert Counter(len(x) for x in clean).keys() == {2, 3, 4}
    disputed = sum(1 for x in clean if Counter(x).most_common(1)[0][1] / len(x) < 0.75)
    assert 0.22 <= disputed / len(clean) <= 0.28
    sample = Counter(m["source"] for _, m in manifests(PROJECT))
    assert set(sample) == {r["source"] for r in records.values()}


def test_errors_name_the_fix(mr: ModuleType, small: Path, tmp_path: Path) -> None:
    with pytest.raises(mr.MakeRecordsError, match="already holds exports"):
        mr.generate(small, 300)
    with pytest.raises(mr.MakeRecordsError, match=r"make_records\.json is missing"):
        mr.append_round(tmp_path)
    assert mr.main(["--out", str(small), "--records", "300", "--quiet"]) == 1


def test_a_failing_stage_is_reported_with_its_output(bench: ModuleType, tmp_path: Path) -> None:
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    with pytest.raises(bench.StageError, match="flywheel ingest failed") as err:
        bench.run_stage("ingest", tmp_path, env, bench.gnu_time_works())
    assert "params.yaml" in str(err.value)


@pytest.mark.parametrize(
    ("limits", "message"),
    [({"seconds": 0.01}, "took over 0.01 s"), ({"rss_mb": 1}, "held over 1 MB")],
)
def test_a_stage_over_its_limits_is_stopped(
    bench: ModuleType, tmp_path: Path, limits: dict[str, float], message: str
) -> None:
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    with pytest.raises(bench.StageError, match=message):
        bench.run_stage("ingest", tmp_path, env, False, bench.Limits(**limits))


@pytest.mark.slow
def test_bench_pipeline_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [
            *(sys.executable, str(BENCHMARKS / "bench_pipeline.py"), "--records", "300"),
            *("--repeats", "1", "--workdir", str(tmp_path), "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    assert figures["records"] == 300 and figures["incremental_records"] == 3
    for stage in ("ingest", "label", "bucket", "dedup", "queue", "split", "agreement", "report"):
        assert figures["stages"][stage]["full_s"] > 0
    assert figures["full_data_stages_s"] > 0 and figures["incremental_ratio"] > 0
    assert "data stages" in done.stdout and "goals" in done.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["figures.json"]  # scratch removed
