"""Raw exports: find them, check their manifests, and read their rows with locations.

Reading is row-tolerant: a malformed row (bad JSON, a CSV row with the wrong number of fields)
comes back as a ``RawRow`` with an ``error`` so ingest can quarantine it; a problem with the export
itself (no manifest, a manifest that fails its schema, a missing file) raises ``ConfigError``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from flywheel import schemas
from flywheel.errors import ConfigError
from flywheel.io import read_yaml

MANIFEST = "manifest.yaml"


@dataclass(frozen=True)
class Export:
    """One folder under ``data/raw``: its manifest and where its records file is."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def export_id(self) -> str:
        return str(self.manifest["export_id"])

    @property
    def file(self) -> Path:
        return self.folder / str(self.manifest["file"])


@dataclass(frozen=True)
class RawRow:
    """A row as read: its 1-based location in the file, its values or why it could not be read."""

    line: int
    values: dict[str, Any] | None
    raw: str
    error: str | None = None


def load_export(folder: Path) -> Export:
    path = folder / MANIFEST
    if not path.exists():
        raise ConfigError(
            f"{folder} has no {MANIFEST}; every export folder needs one "
            f"(see schema/manifest.schema.json and docs/exports.md)."
        )
    manifest = read_yaml(path)
    schemas.check("manifest", manifest, path, ConfigError)
    if manifest["export_id"] != folder.name:
        raise ConfigError(
            f"{path}: export_id '{manifest['export_id']}' differs from the folder name "
            f"'{folder.name}'; rename one so they match."
        )
    export = Export(folder, manifest)
    if not export.file.exists():
        present = (
            ", ".join(sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)) or "none"
        )
        raise ConfigError(
            f"{path} names file '{manifest['file']}', which is not in {folder} "
            f"(files there: {present}); fix 'file' or add the file."
        )
    return export


def discover(raw_dir: Path) -> list[Export]:
    """Every export under ``raw_dir``, in folder-name order."""
    if not raw_dir.is_dir():
        raise ConfigError(f"{raw_dir} is not a folder; set ingest.raw_dir in params.yaml.")
    return [
        load_export(p)
        for p in sorted(raw_dir.iterdir())
        if p.is_dir() and not p.name.startswith(".")
    ]


def read_rows(export: Export) -> Iterator[RawRow]:
    """Rows of the export's file in file order, by its declared format."""
    fmt = export.manifest["format"]
    if fmt == "jsonl":
        yield from _read_jsonl(export.file)
    elif fmt == "csv":
        yield from _read_csv(export.file)
    else:
        yield from _read_parquet(export.file)


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            text = line.rstrip("\n")
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RawRow(
                    number, None, text, f"line is not valid JSON ({exc.msg} at column {exc.colno})"
                )
                continue
            if not isinstance(value, dict):
                yield RawRow(
                    number, None, text, f"line is a JSON {type(value).__name__}, not an object"
                )
                continue
            yield RawRow(number, value, text)


def _read_csv(path: Path) -> Iterator[RawRow]:
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        for fields in reader:
            number = reader.line_num
            raw = ",".join(fields)
            if not any(x.strip() for x in fields):
                continue
            if len(fields) != len(header):
                yield RawRow(
                    number,
                    None,
                    raw,
                    f"row has {len(fields)} fields but the header has {len(header)}",
                )
                continue
            yield RawRow(number, dict(zip(header, fields, strict=True)), raw)


def _read_parquet(path: Path) -> Iterator[RawRow]:
    table = pq.read_table(path)
    for number, value in enumerate(table.to_pylist(), start=1):
        yield RawRow(number, value, json.dumps(value, default=str, sort_keys=True))
