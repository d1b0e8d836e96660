"""``flywheel validate``: every input, guideline and output file against its schema.

Unlike the stages, which stop at the first broken configuration file, validation reads everything
and reports every problem, so one run lists all there is to fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel import (
    bucket,
    dedup,
    exports,
    guidelines,
    label,
    params,
    queue,
    records,
    reviews,
    schemas,
    split,
    store,
)
from flywheel.dedup import PAIRS_SCHEMA
from flywheel.errors import FlywheelError
from flywheel.ingest import ROWS_SCHEMA

RECORD_TABLES = ("data/interim/ingest/*" + store.PARTITION_SUFFIX, "data/splits/*/*.parquet")
# The stages' patches (flywheel.store), in layer order, with the columns each holds.
PATCHES = {
    "data/interim/label": label.COLUMNS,
    "data/interim/bucket": bucket.COLUMNS,
    "data/interim/dedup": dedup.COLUMNS,
    "data/interim/queue": queue.COLUMNS,
    "data/interim/split": split.COLUMNS,
}
# Outputs that are not record tables, with the Arrow schema each must have.
OTHER_TABLES = {
    "data/ledger.parquet": ROWS_SCHEMA,
    "data/interim/pairs.parquet": PAIRS_SCHEMA,
    "data/queue.parquet": queue.QUEUE_SCHEMA,
}


@dataclass
class Result:
    root: Path = Path(".")
    checked: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "problems": self.problems}

    def check(self, path: Path, fn: Callable[[], list[str]]) -> None:
        name = (path.relative_to(self.root) if path.is_relative_to(self.root) else path).as_posix()
        self.checked.append(name)
        try:
            found = fn()
        except FlywheelError as exc:
            found = [str(exc)]
        if found:
            self.problems[name] = found


def _jsonl(path: Path, schema: str) -> list[str]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            out.append(f"line {number}: not valid JSON ({exc.msg})")
            continue
        out.extend(f"line {number} {e}" for e in schemas.errors(schema, data))
    return out


def _records(path: Path) -> list[str]:
    table = pq.read_table(path)
    if table.schema.remove_metadata() != records.SCHEMA:
        return ["columns differ from the record schema (src/flywheel/records.py)"]
    out: list[str] = []
    for i, row in enumerate(table.to_pylist()):
        out.extend(f"row {i} ({row['id']}) {e}" for e in schemas.errors("record", row))
        if len(out) > 20:
            break
    return out


def _table(path: Path, schema: pa.Schema) -> list[str]:
    found = pq.read_schema(path).remove_metadata()
    if found != schema:
        return [
            f"columns are {found.names} of types {[str(t) for t in found.types]}, expected {schema}"
        ]
    if path.name == "ledger.parquet":
        fates = pq.read_table(path, columns=["fate"]).column("fate")
        bad = pc.sum(
            pc.invert(pc.fill_null(pc.is_in(fates, value_set=pa.array(records.FATES)), False))
        ).as_py()
        if bad:
            return [f"{bad} rows have no terminal fate"]
    return []


def _patch(root: Path, path: Path, columns: tuple[str, ...]) -> list[str]:
    """A patch has id and its stage's columns, typed as records, for the records' rows in order."""
    expected = records.schema_of(("id", *columns))
    for file in sorted(path.glob("*.parquet")) if path.is_dir() else [path]:
        found = pq.read_schema(file).remove_metadata()
        if found != expected:
            name = f"{file.name}: " if path.is_dir() else ""
            return [f"{name}columns are {found.names}, expected {expected.names} typed as records"]
    store.load([root / "data/interim/ingest", path], ["id", *columns])  # raises when stale
    return []


def _json(path: Path, schema: str) -> list[str]:
    return schemas.errors(schema, json.loads(path.read_text(encoding="utf-8")))


def _loads(load: Callable[[Path], object], path: Path) -> list[str]:
    """Problems of a file whose loader raises on the first one (params, guidelines, manifests)."""
    load(path)
    return []


def validate_repo(root: Path, params_path: Path, guidelines_path: Path) -> Result:
    result = Result(root)
    result.check(params_path, partial(_loads, params.load, params_path))
    result.check(guidelines_path, partial(_loads, guidelines.load, guidelines_path))
    raw = root / "data/raw"
    for folder in sorted(p for p in raw.iterdir() if p.is_dir()) if raw.is_dir() else []:
        result.check(folder / exports.MANIFEST, partial(_loads, exports.load_export, folder))
    for path in reviews.files(root / "data/reviews"):
        result.check(path, partial(_jsonl, path, "review"))
    for pattern in RECORD_TABLES:
        for path in sorted(root.glob(pattern)):
            result.check(path, partial(_records, path))
    for name, columns in PATCHES.items():
        if (root / name).exists():
            result.check(root / name, partial(_patch, root, root / name, columns))
    for path in sorted(root.glob("data/interim/ingest/*.rows.parquet")):
        result.check(path, partial(_table, path, ROWS_SCHEMA))
    for name, schema in OTHER_TABLES.items():
        if (root / name).exists():
            result.check(root / name, partial(_table, root / name, schema))
    for path, schema in (
        (root / "data/queue.jsonl", "queue"),
        (root / "reports/round.json", "round"),
    ):
        if path.exists():
            check = _jsonl if path.suffix == ".jsonl" else _json
            result.check(path, partial(check, path, schema))
    return result


def format_text(result: Result) -> str:
    lines = [f"{len(result.checked)} files checked"]
    for path, problems in result.problems.items():
        lines += [f"FAIL {path}"] + [f"  {p}" for p in problems]
    lines.append("ok" if result.ok else f"{len(result.problems)} files fail validation")
    return "\n".join(lines)
