"""Stage ``ingest``: every export, by its manifest, into validated, scrubbed records with ids.

A malformed row never stops the run: it is quarantined with its file, line and reason. Every row
read gets exactly one entry in the row ledger (``data/interim/rows.parquet``): quarantined,
excluded (a repeat annotation superseded by a later row), or the id of the record it delivered,
whose fate later stages decide.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel import exports, records, schemas
from flywheel.guidelines import UNCATEGORIZED, Guidelines
from flywheel.io import write_json, write_jsonl, write_parquet
from flywheel.scrub import scrub

ROWS_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("line", pa.int64()),
        ("record_id", pa.string()),
        ("fate", pa.string()),
        ("detail", pa.string()),
    ]
)


class RowError(Exception):
    """A row that cannot become (part of) a record; the message is the quarantine reason."""


def normalize(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: the text exact duplicates are judged on."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def content_hash(prompt: str, response: str) -> str:
    joined = normalize(prompt) + "\x1f" + normalize(response)
    return hashlib.blake2b(joined.encode("utf-8"), digest_size=16).hexdigest()


@dataclass
class Ingested:
    """What ingest produced: records, one ledger row per input row, and the quarantine."""

    records: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Ctx:
    export: exports.Export
    guidelines: Guidelines
    scrub_kinds: tuple[str, ...]
    max_chars: int
    path: str


def _text(values: dict[str, Any], column: str | None, what: str, required: bool) -> str | None:
    if column is None:
        return None
    if column not in values:
        if required:
            raise RowError(f"column '{column}' (mapped to {what}) is missing")
        return None
    value = values[column]
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RowError(f"{what} (column '{column}') is empty")
        return None
    return str(value)


def _confidence(values: dict[str, Any], column: str | None) -> float | None:
    raw = _text(values, column, "model_confidence", required=False)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise RowError(f"model_confidence '{raw}' is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise RowError(f"model_confidence {raw} is outside 0..1")
    return value


def _annotation(
    ctx: _Ctx, annotator: Any, label: Any, where: str, version: Any, note: Any
) -> dict[str, Any]:
    label_s = "" if label is None else str(label).strip()
    if label_s not in ctx.guidelines.labels:
        known = ", ".join(ctx.guidelines.label_names)
        raise RowError(
            f"label '{label_s}' in {where} is not a label of guidelines v{ctx.guidelines.version} "
            f"(labels: {known}); correct the export or add the label to guidelines/labels.yaml"
        )
    gv = ctx.export.manifest.get("guideline_version") if version in (None, "") else str(version)
    note_s = None if note in (None, "") else scrub(str(note), ctx.scrub_kinds)[0]
    return {"annotator": str(annotator), "label": label_s, "guideline_version": gv, "note": note_s}


def _annotations(ctx: _Ctx, values: dict[str, Any]) -> list[dict[str, Any]]:
    spec = ctx.export.manifest["annotations"]
    layout = spec["layout"]
    if layout == "wide":
        return [
            _annotation(ctx, annotator, values[col], f"column '{col}'", None, None)
            for col, annotator in spec["columns"].items()
            if values.get(col) not in (None, "")
        ]
    if layout == "long":
        annotator = _text(values, spec["annotator"], "annotator", required=True)
        return [
            _annotation(
                ctx,
                annotator,
                values.get(spec["label"]),
                f"column '{spec['label']}'",
                values.get(spec.get("guideline_version", "")),
                values.get(spec.get("note", "")),
            )
        ]
    if layout == "list":
        raw = values.get(spec["column"])
        items = json.loads(raw) if isinstance(raw, str) and raw.strip() else (raw or [])
        if not isinstance(items, list) or not all(
            isinstance(a, dict) and "annotator" in a for a in items
        ):
            raise RowError(
                f"column '{spec['column']}' is not a list of {{annotator, label}} objects"
            )
        return [
            _annotation(
                ctx,
                a["annotator"],
                a.get("label"),
                f"column '{spec['column']}'",
                a.get("guideline_version"),
                a.get("note"),
            )
            for a in items
        ]
    return []


def _record(ctx: _Ctx, row: exports.RawRow) -> dict[str, Any]:
    """Map one readable row onto a record; raise RowError with the quarantine reason."""
    assert row.values is not None
    values, fields, manifest = row.values, ctx.export.manifest["fields"], ctx.export.manifest
    pii: list[str] = []
    texts: dict[str, str | None] = {}
    for name, required in (("prompt", True), ("response", True), ("reference", False)):
        value = _text(values, fields.get(name), name, required)
        if value is not None:
            if len(value) > ctx.max_chars:
                raise RowError(
                    f"{name} has {len(value)} characters, over ingest.max_chars {ctx.max_chars}"
                )
            value, kinds = scrub(value, ctx.scrub_kinds)
            pii.extend(k for k in kinds if k not in pii)
        texts[name] = value
    prompt, response = str(texts["prompt"]), str(texts["response"])
    chash = content_hash(prompt, response)
    native = _text(values, fields.get("native_id"), "native_id", required=False)
    if manifest["annotations"]["layout"] == "long":
        native = _text(values, manifest["annotations"]["item"], "item id", required=True)
    reason = _text(values, fields.get("reason"), "reason", required=False) or manifest["reason"]
    record: dict[str, Any] = {
        "id": f"{manifest['source']}/{native.strip() if native else 'h-' + chash[:16]}",
        "source": manifest["source"],
        "export_id": manifest["export_id"],
        "round": manifest["round"],
        "reason": reason,
        "exported_at": str(manifest["exported_at"]),
        "prompt": prompt,
        "response": response,
        "reference": texts["reference"],
        "model_label": _text(values, fields.get("model_label"), "model_label", required=False),
        "model_confidence": _confidence(values, fields.get("model_confidence")),
        "annotations": _annotations(ctx, values),
        "label_status": "unlabeled",
        "reviewed": False,
        "error_category": UNCATEGORIZED,
        "pii": pii,
        "content_hash": chash,
        "origin": f"{ctx.path}:{row.line}",
    }
    problems = schemas.errors("record", record)
    if problems:
        raise RowError("the mapped record " + "; ".join(problems))
    return record


def ingest_export(ctx: _Ctx, out: Ingested, seen: dict[str, str]) -> None:
    """Read one export into ``out``; ``seen`` maps every id delivered so far to its origin."""
    long_layout = ctx.export.manifest["annotations"]["layout"] == "long"
    pending: dict[str, dict[str, Any]] = {}
    # (record id, annotator) -> index in out.rows of the row that currently carries it
    carrier: dict[tuple[str, str], int] = {}
    for row in exports.read_rows(ctx.export):
        try:
            if row.error is not None:
                raise RowError(row.error)
            record = _record(ctx, row)
            rid = record["id"]
            if rid in seen and not (long_layout and rid in pending):
                raise RowError(f"id '{rid}' was already delivered at {seen[rid]}")
        except RowError as exc:
            out.rows.append(_row(ctx.path, row.line, None, "quarantined", str(exc)))
            out.quarantine.append(
                {
                    "file": ctx.path,
                    "line": row.line,
                    "reason": str(exc),
                    "raw": scrub(row.raw, ctx.scrub_kinds)[0],
                }
            )
            continue
        if long_layout and rid in pending:
            first = pending[rid]
            if (first["prompt"], first["response"]) != (record["prompt"], record["response"]):
                reason = (
                    f"prompt or response differs from the item's first row at {first['origin']}"
                )
                out.rows.append(_row(ctx.path, row.line, None, "quarantined", reason))
                out.quarantine.append(
                    {
                        "file": ctx.path,
                        "line": row.line,
                        "reason": reason,
                        "raw": scrub(row.raw, ctx.scrub_kinds)[0],
                    }
                )
                continue
            first["annotations"].extend(record["annotations"])
        else:
            pending[rid] = record
            seen[rid] = record["origin"]
        out.rows.append(_row(ctx.path, row.line, rid, None, None))
        for ann in record["annotations"] if long_layout else ():
            key = (rid, ann["annotator"])
            if key in carrier:
                # A repeat rating: the later row counts (an annotator correcting themselves).
                earlier = out.rows[carrier[key]]
                earlier.update(
                    fate="excluded",
                    detail=f"repeat annotation by {ann['annotator']} "
                    f"superseded by {ctx.path}:{row.line}",
                )
            carrier[key] = len(out.rows) - 1
    for record in pending.values():
        by_annotator = {a["annotator"]: a for a in record["annotations"]}
        record["annotations"] = sorted(by_annotator.values(), key=lambda a: a["annotator"])
        out.records.append(record)


def _row(
    path: str, line: int, rid: str | None, fate: str | None, detail: str | None
) -> dict[str, Any]:
    return {"file": path, "line": line, "record_id": rid, "fate": fate, "detail": detail}


def ingest(raw_dir: Path, guidelines: Guidelines, params: dict[str, Any]) -> Ingested:
    out = Ingested()
    seen: dict[str, str] = {}
    for export in exports.discover(raw_dir):
        ctx = _Ctx(
            export,
            guidelines,
            tuple(params["scrub"]),
            int(params["max_chars"]),
            export.file.as_posix(),
        )
        ingest_export(ctx, out, seen)
    return out


@dataclass(frozen=True)
class Outputs:
    records: Path = Path("data/interim/ingest.parquet")
    rows: Path = Path("data/interim/rows.parquet")
    quarantine: Path = Path("data/quarantine.jsonl")
    metrics: Path = Path("metrics/ingest.json")


def run(
    raw_dir: Path, guidelines: Guidelines, params: dict[str, Any], outputs: Outputs = Outputs()
) -> dict[str, Any]:
    """Ingest every export under ``raw_dir`` and write the stage's outputs atomically."""
    result = ingest(raw_dir, guidelines, params)
    table = records.conform(records.from_rows(result.records))
    rows = pa.Table.from_pylist(result.rows, schema=ROWS_SCHEMA).sort_by(
        [("file", "ascending"), ("line", "ascending")]
    )
    quarantine = sorted(result.quarantine, key=lambda q: (q["file"], q["line"]))
    metrics = {
        "rows_read": len(result.rows),
        "records": table.num_rows,
        "quarantined": len(quarantine),
        "superseded_annotations": sum(1 for r in result.rows if r["fate"] == "excluded"),
        "exports": len({r["file"] for r in result.rows}),
        "pii_records": sum(1 for r in result.records if r["pii"]),
        "pii_kinds": dict(sorted(Counter(k for r in result.records for k in r["pii"]).items())),
        "records_per_round": {
            str(k): v for k, v in sorted(Counter(r["round"] for r in result.records).items())
        },
    }
    write_parquet(outputs.records, table)
    write_parquet(outputs.rows, rows)
    write_jsonl(outputs.quarantine, quarantine)
    write_json(outputs.metrics, metrics)
    return metrics
