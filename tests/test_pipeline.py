"""The whole round on the shipped sample: in-process, and through `dvc repro` in a fresh repository."""

from __future__ import annotations

import ast
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import PROJECT
from flywheel import pipeline, validate

OUTPUTS = ("data", "metrics", "plots", "reports")


def copy_sample(root: Path) -> None:
    for name in ("data/raw", "data/reviews", "guidelines", "src"):
        shutil.copytree(
            PROJECT / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    for name in ("params.yaml", "dvc.yaml", ".dvcignore"):
        shutil.copy(PROJECT / name, root / name)


def input_rows(root: Path) -> int:
    """Rows in every export, counted independently of flywheel's readers."""
    total = 0
    for path in sorted((root / "data/raw").glob("*/*")):
        if path.suffix == ".jsonl":
            total += sum(1 for line in path.read_text().splitlines() if line.strip())
        elif path.suffix == ".csv":
            with path.open(newline="") as f:
                total += sum(1 for _ in csv.reader(f)) - 1
    return total


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for d in OUTPUTS
        for p in sorted((root / d).rglob("*"))
        if p.is_file() and "raw" not in p.parts and "reviews" not in p.parts
    }


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy_sample(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sample_round_balances_validates_and_is_deterministic(sample: Path) -> None:
    pipeline.run_all()
    ledger = pq.read_table(sample / "data/ledger.parquet")
    assert ledger.num_rows == input_rows(sample)
    result = validate.validate_repo(sample, Path("params.yaml"), Path("guidelines/labels.yaml"))
    assert result.ok, result.problems
    first = snapshot(sample)
    assert len(first) >= 15
    pipeline.run_all()
    assert snapshot(sample) == first


def test_every_split_record_carries_its_provenance(sample: Path) -> None:
    pipeline.run_all()
    for name in ("train", "eval"):
        for rec in pq.read_table(sample / f"data/splits/{name}").to_pylist():
            assert rec["split"] == name and rec["fate"] == name
            assert rec["source"] and rec["reason"] and rec["export_id"] and rec["round"] >= 1
            assert rec["error_category"] != "uncategorized" and rec["label"] is not None
            assert rec["label_status"] in {"agreed", "adjudicated"}
            assert rec["reviewed"] == (rec["label_status"] == "adjudicated")
            assert rec["cluster_id"] and rec["duplicate_of"] is None and rec["origin"]


def test_queue_entries_carry_the_stages_label_and_category(sample: Path) -> None:
    pipeline.run_all()
    order = pq.read_table(sample / "data/queue.parquet").to_pylist()
    lines = (sample / "data/queue.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["id"] for e in entries] == [o["id"] for o in order[: len(entries)]]
    for entry, row in zip(entries, order, strict=False):
        assert (entry["label"], entry["error_category"]) == (row["label"], row["error_category"])
    # The sample queues records the bucket stage categorized, not only uncategorized ones.
    assert {e["error_category"] for e in entries} - {"uncategorized"}
    assert any(e["label"] is not None for e in entries)


def test_validate_reports_a_broken_output(sample: Path) -> None:
    pipeline.run_all()
    (sample / "reports/round.json").write_text('{"flywheel_version": 1}')
    result = validate.validate_repo(sample, Path("params.yaml"), Path("guidelines/labels.yaml"))
    assert not result.ok and "reports/round.json" in result.problems


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_dvc_repro_in_a_fresh_repository(tmp_path: Path) -> None:
    """`dvc repro` rebuilds, then has nothing to do, and `--force` gives byte-identical outputs."""
    copy_sample(tmp_path)
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"]}
    dvc = [sys.executable, "-m", "dvc"]
    run(["git", "init", "-q"], tmp_path, env)
    run([*dvc, "init", "-q"], tmp_path, env)
    run([*dvc, "config", "core.analytics", "false"], tmp_path, env)
    run([*dvc, "repro", "-q"], tmp_path, env)
    assert "up to date" in run([*dvc, "status"], tmp_path, env)
    first = snapshot(tmp_path)
    run([*dvc, "repro", "-q", "--force"], tmp_path, env)
    assert snapshot(tmp_path) == first
    run(["flywheel", "validate"], tmp_path, env)


def _flywheel_imports(module: str) -> set[str]:
    """The flywheel modules ``flywheel.<module>`` imports (read from its source)."""
    src = PROJECT / "src/flywheel"
    path = src / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = src / module.replace(".", "/") / "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flywheel"):
            base = (node.module or "")[len("flywheel") :].lstrip(".")
            names = [f"{base}.{a.name}" if base else a.name for a in node.names]
            names += [base] if base else []
        elif isinstance(node, ast.Import):
            names = [
                a.name[len("flywheel.") :] for a in node.names if a.name.startswith("flywheel.")
            ]
        for name in names:
            as_path = name.replace(".", "/")
            if (src / f"{as_path}.py").exists() or (src / as_path / "__init__.py").exists():
                found.add(name)
    return found


def test_dvc_deps_cover_the_code_each_stage_runs() -> None:
    """dvc reruns a stage when a dep changes: every flywheel module the stage's module imports,
    directly or not, must be a dep (a file, or the package folder it is in)."""
    import yaml

    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        seen: set[str] = set()
        todo = [name]
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(_flywheel_imports(module))
        deps = set(stage["deps"])
        missing = sorted(
            m
            for m in seen
            if f"src/flywheel/{m.replace('.', '/')}.py" not in deps
            and f"src/flywheel/{m.split('.')[0]}" not in deps
        )
        assert missing == [], f"dvc.yaml: stage {name} does not depend on {missing}"


def test_the_written_out_layers_are_the_stages_outputs() -> None:
    """pipeline.CHAIN and PAIRS name the stages' outputs without importing every stage."""
    from flywheel import bucket, dedup, ingest, label, queue, split

    modules = (ingest, label, bucket, dedup, queue, split)
    assert tuple(m.Outputs().records for m in modules) == pipeline.CHAIN
    assert dedup.Outputs().pairs == pipeline.PAIRS
