"""Stage ``ingest``: every export, by its manifest, into validated, scrubbed records with ids.

A malformed row never stops the run: it is quarantined with its file, line and reason. Every row
read gets exactly one entry in the row ledger (``ingest_cache.ledger_rows``): quarantined,
excluded (a repeat annotation superseded by a later row), or the id of the record it delivered,
whose fate later stages decide.

The definition of what a row becomes is ``_record`` (one row, as read by
``exports.read_rows``), checked against ``schema/record.schema.json`` by jsonschema. At a million
rows that is far too slow, so ingest runs it only for the rows that need it:

- ``ingest_read`` reads each file in bulk with pyarrow, leaving to the row reader only the rows
  pyarrow cannot read as Python would (malformed JSON, a CSV row with the wrong field count);
- ``ingest_map`` maps whole columns, scrubs (``scrub.scrub_array``), hashes
  (``ingest_text``) and validates (``validate_rows``) them, and hands every row whose values it
  cannot reproduce exactly, and every row that would fail, to ``_record``;
- ``ingest_ledger`` settles ids across rows and exports, long-layout items and the ledger.

The outputs are the same, row for row, as running ``_record`` on every row: the tests check it
on random exports in every format and layout against the row-at-a-time ingest.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import (
    exports,
    ingest_cache,
    ingest_ledger,
    ingest_map,
    ingest_read,
    parts,
    schemas,
)
from flywheel.guidelines import UNCATEGORIZED, Guidelines
from flywheel.ingest_ledger import ROWS_SCHEMA
from flywheel.ingest_text import content_hash, normalize
from flywheel.io import write_json, write_jsonl
from flywheel.memory import keep_freed_memory
from flywheel.scrub import scrub, scrub_array

__all__ = [
    "ROWS_SCHEMA",
    "Ingested",
    "Outputs",
    "RowError",
    "content_hash",
    "ingest",
    "normalize",
    "run",
]


#: Worker processes for mapping exports: one per core, at most four (each holds one export).
WORKERS = max(1, min(os.cpu_count() or 1, 4))


class RowError(Exception):
    """A row that cannot become (part of) a record; the message is the quarantine reason."""


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
    raw: dict[str, str | None] = {}
    for name, required in (("prompt", True), ("response", True), ("reference", False)):
        value = _text(values, fields.get(name), name, required)
        if value is not None and len(value) > ctx.max_chars:
            raise RowError(
                f"{name} has {len(value)} characters, over ingest.max_chars {ctx.max_chars}"
            )
        raw[name] = value
    native = _text(values, fields.get("native_id"), "native_id", required=False)
    if manifest["annotations"]["layout"] == "long":
        native = _text(values, manifest["annotations"]["item"], "item id", required=True)
    reason = _text(values, fields.get("reason"), "reason", required=False) or manifest["reason"]
    model_label = _text(values, fields.get("model_label"), "model_label", required=False)
    confidence = _confidence(values, fields.get("model_confidence"))
    annotations = _annotations(ctx, values)
    # Scrubbing cannot fail, so it comes after every check that can: a row that is quarantined
    # costs no scrubbing (its raw text is scrubbed with the others, in bulk).
    pii: list[str] = []
    texts: dict[str, str | None] = {}
    for name, value in raw.items():
        if value is not None:
            value, kinds = scrub(value, ctx.scrub_kinds)
            pii.extend(k for k in kinds if k not in pii)
        texts[name] = value
    prompt, response = str(texts["prompt"]), str(texts["response"])
    chash = content_hash(prompt, response)
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
        "model_label": model_label,
        "model_confidence": confidence,
        "annotations": annotations,
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


@dataclass
class Ingested:
    """What ingest produced: the records, one ledger row per row read, and the quarantine."""

    records: pa.Table  # records.SCHEMA, in records.SORT_KEYS order
    rows: pa.Table  # ROWS_SCHEMA, by file and line
    quarantine: list[dict[str, Any]]  # file, line, reason, raw; by file and line


def _candidate(record: dict[str, Any], line: int, src: int, long_layout: bool) -> dict[str, Any]:
    """A record from ``_record`` as an ``ingest_map.CANDIDATE`` row."""
    annotations = record["annotations"]
    if not long_layout:
        # A record keeps each annotator's last annotation, by annotator.
        by_annotator = {a["annotator"]: a for a in annotations}
        annotations = sorted(by_annotator.values(), key=lambda a: a["annotator"])
    return {**record, "line": line, "src": src, "annotations": annotations}


def ingest_export(ctx: _Ctx) -> ingest_ledger.Delivered:
    """One export's rows: mapped in bulk where possible, by ``_record`` where not."""
    manifest = ctx.export.manifest
    frame = ingest_read.read(ctx.export, ingest_map.jsonl_columns(manifest))
    spec = ingest_map.Spec(
        manifest, frozenset(ctx.guidelines.labels), ctx.scrub_kinds, ctx.max_chars, ctx.path
    )
    fast, slow = ingest_map.map_rows(spec, frame.table, frame.lines)
    long_layout = manifest["annotations"]["layout"] == "long"
    candidates: list[dict[str, Any]] = []
    raws: list[str] = []
    quarantined: list[dict[str, Any]] = []
    bulk_rows = (frame.bulk.row(int(i)) for i in np.flatnonzero(slow))
    for row in [*frame.slow, *(r for r in bulk_rows if r is not None)]:
        try:
            if row.error is not None:
                raise RowError(row.error)
            record = _record(ctx, row)
        except RowError as exc:
            quarantined.append(
                {"file": ctx.path, "line": row.line, "reason": str(exc), "raw": row.raw}
            )
            continue
        candidates.append(_candidate(record, row.line, -1 - len(raws), long_layout))
        raws.append(row.raw)
    frame.bulk.release()
    if quarantined:
        clean, _ = scrub_array(
            pa.array([q["raw"] for q in quarantined], pa.string()), ctx.scrub_kinds
        )
        for q, text in zip(quarantined, clean.to_pylist(), strict=True):
            q["raw"] = text
    table = pa.concat_tables([fast, pa.Table.from_pylist(candidates, schema=ingest_map.CANDIDATE)])
    alive = np.concatenate((~slow, np.ones(len(candidates), dtype=bool)))
    table = ingest_ledger.hash_heads(table, alive, long_layout)
    raw = ingest_ledger.RawText(frame.bulk, raws)
    return ingest_ledger.Delivered(ctx.path, manifest, table, alive, quarantined, raw)


def _map_exports(contexts: list[_Ctx]) -> list[ingest_ledger.Delivered]:
    """``ingest_export`` of every export, in reading order.

    Two at a time (``ingest_ledger.THREADS``): pyarrow and numpy release the GIL, so one
    export's bulk work runs while the other's Python (callbacks, hashing, the row path) does;
    the largest first, so that both threads finish together. (Worker processes would also run
    the Python in parallel, but measured no faster at a million rows: pickling the mapped
    tables back costs what they save, and spawning re-imports the caller's main module.)
    """
    sizes = [ctx.export.file.stat().st_size for ctx in contexts]
    biggest = sorted(range(len(contexts)), key=lambda i: -sizes[i])
    with ThreadPoolExecutor(ingest_ledger.THREADS) as pool:
        done = pool.map(ingest_export, [contexts[i] for i in biggest])
        mapped = dict(zip(biggest, done, strict=True))
    return [mapped[i] for i in range(len(contexts))]


def ingest(raw_dir: Path, guidelines: Guidelines, params: dict[str, Any]) -> Ingested:
    kinds = tuple(params["scrub"])
    contexts = [
        _Ctx(export, guidelines, kinds, int(params["max_chars"]), export.file.as_posix())
        for export in exports.discover(raw_dir)
    ]
    delivered = _map_exports(contexts)
    settled = ingest_ledger.settle(delivered, lambda raw: scrub(raw, kinds)[0])
    return Ingested(settled.records, settled.rows, settled.quarantine)


@dataclass(frozen=True)
class Outputs:
    records: Path = Path("data/interim/ingest")  # one part per export (flywheel.ingest_cache)
    quarantine: Path = Path("data/quarantine.jsonl")
    metrics: Path = Path("metrics/ingest.json")


def _alone(ctx: _Ctx) -> ingest_cache.Part:
    """One export ingested on its own (what it gives when no other export shares its ids)."""
    settled = ingest_ledger.settle([ingest_export(ctx)], lambda raw: scrub(raw, ctx.scrub_kinds)[0])
    return ingest_cache.Part(ctx.export, settled.records, settled.rows, settled.quarantine)


def _together(contexts: list[_Ctx]) -> list[ingest_cache.Part]:
    """Every export settled together (they share ids), split back into parts by export."""
    kinds = contexts[0].scrub_kinds
    settled = ingest_ledger.settle(_map_exports(contexts), lambda raw: scrub(raw, kinds)[0])
    out = []
    for ctx in contexts:
        mine = pc.equal(settled.records["export_id"], ctx.export.export_id)
        rows = settled.rows.filter(pc.equal(settled.rows["file"], ctx.path))
        quarantine = [q for q in settled.quarantine if q["file"] == ctx.path]
        out.append(ingest_cache.Part(ctx.export, settled.records.filter(mine), rows, quarantine))
    return out


#: Below this many bytes of exports to map, worker processes cost more to start than they save.
PROCESS_BYTES = 32 << 20


def _build_part(ctx: _Ctx, folder: Path, fingerprint: str) -> None:
    ingest_cache.write(folder, _alone(ctx), fingerprint)


def _worth_processes(contexts: list[_Ctx]) -> bool:
    size = sum(ctx.export.file.stat().st_size for ctx in contexts)
    return min(WORKERS, len(contexts)) >= 2 and size >= PROCESS_BYTES


def _workers(count: int) -> ProcessPoolExecutor:
    """Worker processes, started at once (they import flywheel while the caller goes on)."""
    spawn = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(min(WORKERS, count), mp_context=spawn, initializer=keep_freed_memory)
    pool.submit(int)  # the pool starts its processes on the first task
    return pool


def _build_parts(
    contexts: list[_Ctx], folder: Path, prints: list[str], pool: ProcessPoolExecutor | None
) -> None:
    """Map and write each export's part, in worker processes when there is enough to do.

    Each worker writes its own part, so nothing large travels back. Processes, not threads:
    the per-row Python (scrubbing callbacks, hashing, the row path) holds the GIL, and on two
    cores threads measured 1.35x one core at a million rows where processes measured 1.9x.
    ``spawn`` starts clean interpreters: forking a parent that holds Arrow's thread pools is not
    safe. ``pool``: workers already started, if the caller expected enough to do.
    """
    if not _worth_processes(contexts):
        for ctx, fingerprint in zip(contexts, prints, strict=True):
            _build_part(ctx, folder, fingerprint)
        return
    with contextlib.ExitStack() as stack:
        pool = pool or stack.enter_context(_workers(len(contexts)))
        list(pool.map(_build_part, contexts, [folder] * len(contexts), prints))


def run(
    raw_dir: Path, guidelines: Guidelines, params: dict[str, Any], outputs: Outputs = Outputs()
) -> dict[str, Any]:
    """Ingest every export under ``raw_dir``; an export whose fingerprint is unchanged since the
    last build keeps its part of the output (``flywheel.ingest_cache``)."""
    kinds = tuple(params["scrub"])
    contexts = [
        _Ctx(export, guidelines, kinds, int(params["max_chars"]), export.file.as_posix())
        for export in exports.discover(raw_dir)
    ]
    folder = outputs.records
    folder.mkdir(parents=True, exist_ok=True)
    names = [ingest_cache.part_name(c.export) for c in contexts]
    stored = [ingest_cache.stored_fingerprint(folder, name) for name in names]
    # Exports without a part will surely be mapped: when they are enough for worker processes,
    # those start now and import while the files are hashed (half a second each, at 1 GB).
    surely = [c for c, s in zip(contexts, stored, strict=True) if s is None]
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(_workers(len(surely))) if _worth_processes(surely) else None
        prints = ingest_cache.fingerprints([c.export for c in contexts], guidelines, params)
        todo = [i for i in range(len(names)) if stored[i] != prints[i]]
        ingest_cache.remove_others(folder, set(names))
        # The largest first: the workers then finish together.
        todo.sort(key=lambda i: -contexts[i].export.file.stat().st_size)
        _build_parts([contexts[i] for i in todo], folder, [prints[i] for i in todo], pool)
    if ingest_cache.ids_repeat(folder, names):
        for part in _together(contexts):
            ingest_cache.write(folder, part, "")  # not reusable alone: settled with the others
    ordered = ingest_cache.in_ledger_order([c.export for c in contexts])
    quarantine = [
        q for e in ordered for q in ingest_cache.read_quarantine(folder, ingest_cache.part_name(e))
    ]
    # Each part's share of the metrics is kept in its records file: a million records and
    # their ledger rows were read for these (0.3 s a round).
    total = parts.add([ingest_cache.stored_counts(folder, name) for name in names])
    metrics = {
        **{k: total.get(k, 0) for k in ("rows_read", "records", "quarantined")},
        **{k: total.get(k, 0) for k in ("superseded_annotations", "exports", "pii_records")},
        "pii_kinds": total.get("pii_kinds", {}),
        "records_per_round": dict(
            sorted(total.get("records_per_round", {}).items(), key=lambda kv: int(kv[0]))
        ),
    }
    write_jsonl(outputs.quarantine, quarantine)
    write_json(outputs.metrics, metrics)
    return metrics
