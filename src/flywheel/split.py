"""Stage ``split``: train/eval by near-duplicate cluster, deterministic and sticky.

A record's split is a pure function of its cluster id and ``split.seed``: the cluster's hash,
read as a number in [0, 1), below ``split.eval_fraction`` means eval. So a whole cluster always
lands in one split, and a record never changes split when later rounds, reviews or reorderings
arrive: no state from earlier builds is needed, which a fresh clone does not have. Stratification
by error category therefore holds in expectation; ``metrics/split.json`` reports the eval share of
every category so a skew is visible. (docs/design.md explains why this beats a stateful greedy
stratifier.) Records whose label's guideline action is ``exclude`` are excluded with that reason.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from flywheel import records
from flywheel.errors import GateError
from flywheel.guidelines import Guidelines
from flywheel.io import read_parquet, write_json, write_parquet


def unit_hash(seed: int, key: str) -> float:
    """A uniform number in [0, 1) from ``seed`` and ``key``."""
    digest = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign(cluster_id: str, seed: int, eval_fraction: float) -> str:
    return "eval" if unit_hash(seed, cluster_id) < eval_fraction else "train"


def apply(table: pa.Table, guidelines: Guidelines, seed: int, eval_fraction: float) -> pa.Table:
    rows = table.to_pylist()
    for row in rows:
        if row["fate"] is not None:
            continue
        if guidelines.action_of(row["label"]) == "exclude":
            row.update(
                fate="excluded", fate_detail=f"label '{row['label']}' has guideline action exclude"
            )
            continue
        split = assign(row["cluster_id"], seed, eval_fraction)
        row.update(split=split, fate=split, fate_detail=None)
    return records.conform(records.from_rows(rows))


def leakage(table: pa.Table) -> int:
    """Clusters with members in both train and eval (must be zero)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for cid, split in zip(
        table.column("cluster_id").to_pylist(), table.column("split").to_pylist(), strict=True
    ):
        if split:
            seen[cid].add(split)
    return sum(1 for s in seen.values() if len(s) > 1)


@dataclass(frozen=True)
class Outputs:
    records: Path = Path("data/interim/split.parquet")
    train: Path = Path("data/splits/train.parquet")
    eval: Path = Path("data/splits/eval.parquet")
    metrics: Path = Path("metrics/split.json")


def run(
    source: Path, guidelines: Guidelines, params: dict[str, Any], outputs: Outputs = Outputs()
) -> dict[str, Any]:
    table = apply(
        read_parquet(source), guidelines, int(params["seed"]), float(params["eval_fraction"])
    )
    leaking = leakage(table)
    if leaking:
        raise GateError(
            f"{leaking} duplicate clusters have members in both train and eval; this is a bug in "
            "split assignment, please report it with data/interim/dedup.parquet."
        )
    splits = table.column("split")
    train = table.filter(pc.equal(splits, "train"))
    evals = table.filter(pc.equal(splits, "eval"))
    per_cat: dict[str, Counter[str]] = defaultdict(Counter)
    for cat, split in zip(
        table.column("error_category").to_pylist(), splits.to_pylist(), strict=True
    ):
        if split:
            per_cat[cat][split] += 1
    metrics = {
        "train": train.num_rows,
        "eval": evals.num_rows,
        "excluded": pc.sum(pc.equal(table.column("fate"), "excluded")).as_py() or 0,
        "leaking_clusters": leaking,
        "eval_share_by_category": {
            c: round(n["eval"] / (n["eval"] + n["train"]), 4) for c, n in sorted(per_cat.items())
        },
    }
    write_parquet(outputs.records, table)
    write_parquet(outputs.train, train)
    write_parquet(outputs.eval, evals)
    write_json(outputs.metrics, metrics)
    return metrics
