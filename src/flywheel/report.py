"""Stage ``report``: the ledger that proves nothing was lost, and the round manifest.

The ledger has one row per input row (file, line): its record, if it delivered one, and its one
terminal fate (quarantined, excluded, duplicate, queued, train, eval). ``check_ledger`` refuses a
ledger where a row has no fate, a fate outside that list, or a record appears that no row
delivered. The round manifest records inputs with hashes, guideline version, params, each
stage's counts and a fingerprint of everything the build came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from flywheel import __version__, exports, ingest_cache, records, reviews, schemas, store
from flywheel.errors import GateError
from flywheel.guidelines import Guidelines
from flywheel.ingest_ledger import ROWS_SCHEMA
from flywheel.io import sha256_file, write_json, write_parquet

STAGES = ("ingest", "label", "agreement", "bucket", "dedup", "queue", "split")


def ledger(rows: pa.Table, final: pa.Table) -> pa.Table:
    """Each input row with its terminal fate: its own (quarantined/excluded) or its record's."""
    at = pc.index_in(rows.column("record_id"), value_set=final.column("id"))
    own = pc.is_valid(rows.column("fate"))
    fate = pc.if_else(own, rows.column("fate"), final.column("fate").take(at))
    detail = pc.if_else(own, rows.column("detail"), final.column("fate_detail").take(at))
    return rows.set_column(3, "fate", fate).set_column(4, "detail", detail).cast(ROWS_SCHEMA)


def check_ledger(table: pa.Table, final: pa.Table) -> dict[str, int]:
    """Fate counts; GateError when any row lacks exactly one known fate or a record has no row."""
    problems = []
    known = pc.fill_null(pc.is_in(table.column("fate"), value_set=pa.array(records.FATES)), False)
    unknown = table.filter(pc.invert(known))
    if unknown.num_rows:
        first = ", ".join(f"{r['file']}:{r['line']}" for r in unknown.slice(0, 3).to_pylist())
        problems.append(f"{unknown.num_rows} rows have no terminal fate (first: {first})")
    keys = table.group_by(["file", "line"]).aggregate([("line", "count")])
    if keys.num_rows != table.num_rows:
        problems.append("some input rows appear more than once")
    delivered = pc.is_in(final.column("id"), value_set=pc.drop_null(table.column("record_id")))
    orphans = final.filter(pc.invert(delivered)).column("id")
    if len(orphans):
        problems.append(
            f"{len(orphans)} records were delivered by no input row (first: {orphans[0]})"
        )
    if problems:
        raise GateError("The ledger does not balance: " + "; ".join(problems) + ".")
    return records.counts(table.column("fate"))


def fingerprint(
    inputs: list[dict[str, Any]],
    reviews_: list[dict[str, str]],
    guidelines_sha: str,
    params: dict[str, Any],
) -> str:
    """One hash of everything the round was built from (inputs, reviews, guidelines, params).

    The round's git revision is the commit that will carry its ``dvc.lock``; that commit does not
    exist while the build runs, so the manifest names its content instead. ``git log -- dvc.lock``
    maps a fingerprint back to commits.
    """
    h = hashlib.sha256()
    for item in inputs:
        h.update(f"{item['file']}\0{item['sha256']}\0{item['manifest_sha256']}\n".encode())
    for item in reviews_:
        h.update(f"{item['file']}\0{item['sha256']}\n".encode())
    h.update(guidelines_sha.encode())
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()


def by_round(final: pa.Table) -> dict[str, dict[str, int]]:
    counts = final.group_by(["round", "fate"]).aggregate([("id", "count")]).to_pylist()
    out: dict[str, dict[str, int]] = {}
    for c in sorted(counts, key=lambda c: (c["round"], c["fate"])):
        row = out.setdefault(str(c["round"]), {"records": 0})
        row["records"] += c["id_count"]
        row[c["fate"]] = c["id_count"]
    return {k: dict(sorted(v.items())) for k, v in out.items()}


@dataclass(frozen=True)
class Outputs:
    ledger: Path = Path("data/ledger.parquet")
    manifest: Path = Path("reports/round.json")


def run(
    raw_dir: Path,
    reviews_dir: Path,
    guidelines_path: Path,
    guidelines: Guidelines,
    params: dict[str, Any],
    layers: Sequence[Path],
    metrics_dir: Path = Path("metrics"),
    outputs: Outputs = Outputs(),
) -> dict[str, Any]:
    """The ledger and the round manifest; ``layers`` are the records through split's patch."""
    final = store.load(layers, ["id", "round", "fate", "fate_detail"])
    rows = ingest_cache.ledger_rows(layers[0], exports.discover(raw_dir))
    led = ledger(rows, final)
    fates = check_ledger(led, final)
    per_file = records.counts(led.column("file"))
    inputs = []
    for export in exports.discover(raw_dir):
        m = export.manifest
        inputs.append(
            {
                "export_id": export.export_id,
                "source": m["source"],
                "reason": m["reason"],
                "round": m["round"],
                "file": export.file.as_posix(),
                "sha256": sha256_file(export.file),
                "manifest_sha256": sha256_file(export.folder / exports.MANIFEST),
                "rows": per_file.get(export.file.as_posix(), 0),
            }
        )
    stages = {}
    for name in STAGES:
        path = metrics_dir / f"{name}.json"
        if path.exists():
            stages[name] = json.loads(path.read_text(encoding="utf-8"))
    ledger_summary: dict[str, Any] = {"rows": led.num_rows, "balanced": True, "fates": fates}
    review_files = [
        {"file": p.as_posix(), "sha256": sha256_file(p)} for p in reviews.files(reviews_dir)
    ]
    guidelines_sha = sha256_file(guidelines_path)
    manifest = {
        "flywheel_version": __version__,
        "fingerprint": fingerprint(inputs, review_files, guidelines_sha, params),
        "rounds": sorted({int(r) for r in final.column("round").to_pylist()}),
        "guidelines": {
            "path": guidelines_path.as_posix(),
            "version": guidelines.version,
            "sha256": guidelines_sha,
        },
        "params": params,
        "inputs": inputs,
        "reviews": [
            {"file": p.as_posix(), "sha256": sha256_file(p)} for p in reviews.files(reviews_dir)
        ],
        "stages": stages,
        "ledger": ledger_summary,
        "by_round": by_round(final),
    }
    schemas.check("round", manifest, outputs.manifest)
    write_parquet(outputs.ledger, led)
    write_json(outputs.manifest, manifest)
    return ledger_summary
