"""Stage ``report``: the ledger that proves nothing was lost, and the round manifest.

The ledger has one row per input row (file, line): its record, if it delivered one, and its one
terminal fate (quarantined, excluded, duplicate, queued, train, eval). ``check_ledger`` refuses a
ledger where a row has no fate, a fate outside that list, or a record appears that no row
delivered. The round manifest records inputs with hashes, guideline version, params, each
stage's counts and the git revision the build came from.
"""

from __future__ import annotations

import json
import subprocess
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


# What a build is made from. The revision recorded is the last commit touching these, not HEAD,
# so that committing the outputs themselves does not change the next build's bytes.
BUILD_INPUTS = ("data/raw", "data/reviews", "guidelines", "params.yaml", "dvc.yaml", "src")


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--", *BUILD_INPUTS],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


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
    manifest = {
        "flywheel_version": __version__,
        "git_revision": git_revision(),
        "rounds": sorted({int(r) for r in final.column("round").to_pylist()}),
        "guidelines": {
            "path": guidelines_path.as_posix(),
            "version": guidelines.version,
            "sha256": sha256_file(guidelines_path),
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
