"""Shared fixtures: a throwaway dataset repository built from the project's own guidelines and params."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]

WideWriter = Callable[..., Path]


def manifest(export_id: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "export_id": export_id,
        "source": "prod_thumbs_down",
        "reason": "thumbs_down",
        "round": 1,
        "exported_at": "2026-09-01T09:00:00Z",
        "file": "records.jsonl",
        "format": "jsonl",
        "guideline_version": "1.2",
        "fields": {
            "native_id": "id",
            "prompt": "prompt",
            "response": "response",
            "model_label": "model_label",
            "model_confidence": "model_confidence",
        },
        "annotations": {"layout": "wide", "columns": {"label_a": "ann-a", "label_b": "ann-b"}},
    }
    base.update(overrides)
    return base


def write_export(root: Path, man: dict[str, Any], rows: Iterable[dict[str, Any] | str]) -> Path:
    """Write an export folder; a ``str`` row is written verbatim (to make malformed lines)."""
    folder = root / "data" / "raw" / man["export_id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.yaml").write_text(yaml.safe_dump(man, sort_keys=False), encoding="utf-8")
    path = folder / man["file"]
    rows = list(rows)
    if man["format"] == "jsonl":
        path.write_text(
            "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), "utf-8"
        )
    elif man["format"] == "csv":
        dicts = [r for r in rows if isinstance(r, dict)]
        header = list(dicts[0]) if dicts else ["prompt", "response"]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            if isinstance(r, str):
                buf.write(r + "\n")
            else:
                w.writerow(["" if r.get(h) is None else r.get(h) for h in header])
        path.write_text(buf.getvalue(), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist([r for r in rows if isinstance(r, dict)]), path)
    return path


def init_repo(root: Path) -> Path:
    """Lay out an empty dataset repository (guidelines, params, no exports) in ``root``."""
    (root / "guidelines").mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "guidelines" / "labels.yaml", root / "guidelines" / "labels.yaml")
    shutil.copy(PROJECT / "params.yaml", root / "params.yaml")
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    (root / "data" / "reviews").mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def fresh_repo() -> Iterator[Path]:
    """``init_repo`` in a new temporary folder, as the working directory (for hypothesis tests)."""
    old = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(init_repo(Path(tmp)))
        try:
            yield Path(tmp)
        finally:
            os.chdir(old)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty dataset repository as the working directory."""
    monkeypatch.chdir(init_repo(tmp_path))
    return tmp_path


def row(
    i: int, a: str | None = "correct_and_polite", b: str | None = "correct_and_polite", **kw: Any
) -> dict[str, Any]:
    """A wide-layout row with sensible customer-service text."""
    base = {
        "id": f"td-{i:04d}",
        "prompt": f"Where is my order #A{1000 + i}-55? It was due last week.",
        "response": f"Sorry about the delay with order #A{1000 + i}-55. It left our warehouse on Monday "
        "and the carrier shows delivery by Thursday.",
        "model_label": "correct_and_polite",
        "model_confidence": 0.9,
        "label_a": a,
        "label_b": b,
    }
    base.update(kw)
    return base
