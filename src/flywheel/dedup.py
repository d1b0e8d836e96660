"""Stage ``dedup``: exact-duplicate clusters and the representative each keeps.

Two records are exact duplicates when the normalized text of every field in ``dedup.fields``
matches. Within a cluster the representative is, in order: from the earliest round (a record
already in an earlier round's splits is never displaced by a later one, so earlier rounds do not
change when a round is added), reviewed, of higher risk, then the smallest id. The others get
``duplicate_of`` and the fate ``duplicate``. A cluster whose members carry different final labels
queues its representative with the reason ``conflicting_duplicates``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel import records
from flywheel.guidelines import Guidelines
from flywheel.ingest import normalize
from flywheel.io import read_parquet, write_json, write_parquet

RISK_ORDER = {"high": 0, "medium": 1, "low": 2, "none": 3}


def dedup_key(row: dict[str, Any], fields: list[str]) -> str:
    joined = "\x1f".join(normalize(row[f]) for f in fields)
    return hashlib.blake2b(joined.encode("utf-8"), digest_size=16).hexdigest()


def representative_order(row: dict[str, Any], guidelines: Guidelines) -> tuple[Any, ...]:
    risk = RISK_ORDER.get(guidelines.risk_of(row["error_category"]), 1)
    return (row["round"], not row["reviewed"], risk, row["id"])


def apply(table: pa.Table, guidelines: Guidelines, fields: list[str]) -> pa.Table:
    rows = table.to_pylist()
    clusters: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        clusters[dedup_key(row, fields)].append(row)
    for key, members in clusters.items():
        members.sort(key=lambda r: representative_order(r, guidelines))
        rep = members[0]
        labels = {m["label"] for m in members if m["label"] is not None}
        for m in members:
            m["cluster_id"] = "c-" + key[:16]
        for m in members[1:]:
            m.update(
                duplicate_of=rep["id"],
                fate="duplicate",
                fate_detail=f"exact duplicate of {rep['id']}",
            )
        if len(labels) > 1:
            rep["queue_reasons"] = ["conflicting_duplicates"]
    return records.conform(records.from_rows(rows))


@dataclass(frozen=True)
class Outputs:
    records: Path = Path("data/interim/dedup.parquet")
    metrics: Path = Path("metrics/dedup.json")


def run(
    source: Path, guidelines: Guidelines, params: dict[str, Any], outputs: Outputs = Outputs()
) -> dict[str, Any]:
    table = apply(read_parquet(source), guidelines, list(params["fields"]))
    dups = table.column("duplicate_of").to_pylist()
    clusters = table.column("cluster_id").to_pylist()
    sizes: dict[str, int] = defaultdict(int)
    for c in clusters:
        sizes[c] += 1
    metrics = {
        "records": table.num_rows,
        "duplicates": sum(d is not None for d in dups),
        "clusters": len(sizes),
        "clusters_with_duplicates": sum(1 for n in sizes.values() if n > 1),
        "largest_cluster": max(sizes.values(), default=0),
        "conflicting_clusters": sum(
            1
            for r in table.column("queue_reasons").to_pylist()
            if r and "conflicting_duplicates" in r
        ),
    }
    write_parquet(outputs.records, table)
    write_json(outputs.metrics, metrics)
    return metrics
