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
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel import __version__, exports, records, reviews, schemas
from flywheel.errors import GateError
from flywheel.guidelines import Guidelines
from flywheel.ingest import ROWS_SCHEMA
from flywheel.io import read_parquet, sha256_file, write_json, write_parquet

STAGES = ("ingest", "label", "agreement", "bucket", "dedup", "queue", "split")


def ledger(rows: pa.Table, final: pa.Table) -> pa.Table:
    """Each input row with its terminal fate: its own (quarantined/excluded) or its record's."""
    fate = dict(zip(final.column("id").to_pylist(), final.column("fate").to_pylist(), strict=True))
    detail = dict(
        zip(final.column("id").to_pylist(), final.column("fate_detail").to_pylist(), strict=True)
    )
    out = rows.to_pylist()
    for row in out:
        if row["fate"] is None and row["record_id"] is not None:
            row["fate"] = fate.get(row["record_id"])
            row["detail"] = detail.get(row["record_id"])
    return pa.Table.from_pylist(out, schema=ROWS_SCHEMA)


def check_ledger(table: pa.Table, final: pa.Table) -> dict[str, int]:
    """Fate counts; GateError when any row lacks exactly one known fate or a record has no row."""
    fates = table.column("fate").to_pylist()
    problems = []
    unknown = [
        f"{r['file']}:{r['line']}"
        for r, f in zip(table.to_pylist(), fates, strict=True)
        if f not in records.FATES
    ]
    if unknown:
        problems.append(
            f"{len(unknown)} rows have no terminal fate (first: {', '.join(unknown[:3])})"
        )
    keys = list(
        zip(table.column("file").to_pylist(), table.column("line").to_pylist(), strict=True)
    )
    if len(set(keys)) != len(keys):
        problems.append("some input rows appear more than once")
    delivered = set(table.column("record_id").to_pylist())
    orphans = [i for i in final.column("id").to_pylist() if i not in delivered]
    if orphans:
        problems.append(
            f"{len(orphans)} records were delivered by no input row (first: {orphans[0]})"
        )
    if problems:
        raise GateError("The ledger does not balance: " + "; ".join(problems) + ".")
    return dict(sorted(Counter(fates).items()))


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


def by_round(final: pa.Table, rows: pa.Table) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for rnd, fate in zip(
        final.column("round").to_pylist(), final.column("fate").to_pylist(), strict=True
    ):
        counts[str(rnd)]["records"] += 1
        counts[str(rnd)][fate] += 1
    return {k: dict(sorted(v.items())) for k, v in sorted(counts.items())}


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
    metrics_dir: Path = Path("metrics"),
    outputs: Outputs = Outputs(),
) -> dict[str, Any]:
    final = read_parquet(Path("data/interim/split.parquet"))
    rows = read_parquet(Path("data/interim/rows.parquet"))
    led = ledger(rows, final)
    fates = check_ledger(led, final)
    per_file = Counter(led.column("file").to_pylist())
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
        "by_round": by_round(final, rows),
    }
    schemas.check("round", manifest, outputs.manifest)
    write_parquet(outputs.ledger, led)
    write_json(outputs.manifest, manifest)
    return ledger_summary
