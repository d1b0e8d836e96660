"""Stage ``label``: the final label of each record and how it was reached.

- ``adjudicated``: a reviewer decided (the latest decision in ``data/reviews`` wins);
- ``agreed``: at least ``label.min_annotators`` annotations and a share of at least
  ``label.agree_share`` gave the same label;
- ``disputed``: enough annotations, no such majority;
- ``unlabeled``: too few annotations.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel import records, reviews
from flywheel.guidelines import Guidelines, version_key
from flywheel.io import read_parquet, write_json, write_parquet


@dataclass(frozen=True)
class Decision:
    label: str | None
    status: str
    guideline_version: str | None


def decide(annotations: list[dict[str, Any]], min_annotators: int, agree_share: float) -> Decision:
    """The final label from annotations alone."""
    if len(annotations) < min_annotators or not annotations:
        return Decision(None, "unlabeled", None)
    counts = Counter(a["label"] for a in annotations).most_common()
    top, n = counts[0]
    tied = len(counts) > 1 and counts[1][1] == n
    if tied or n / len(annotations) < agree_share:
        return Decision(None, "disputed", None)
    versions = [a["guideline_version"] for a in annotations if a["label"] == top]
    return Decision(top, "agreed", max(versions, key=version_key))


def apply(
    table: pa.Table, decisions: dict[str, reviews.Decision], min_annotators: int, agree_share: float
) -> pa.Table:
    """Fill label, label_status, label_guideline_version, reviewed and review."""
    rows = table.to_pylist()
    for row in rows:
        review = decisions.get(row["id"])
        if review is not None:
            row.update(
                label=review.label,
                label_status="adjudicated",
                reviewed=True,
                review=review.as_review(),
                label_guideline_version=review.guideline_version,
            )
            continue
        d = decide(row["annotations"], min_annotators, agree_share)
        row.update(
            label=d.label,
            label_status=d.status,
            label_guideline_version=d.guideline_version,
            reviewed=False,
            review=None,
        )
    return records.conform(records.from_rows(rows))


@dataclass(frozen=True)
class Outputs:
    records: Path = Path("data/interim/label.parquet")
    metrics: Path = Path("metrics/label.json")


def run(
    source: Path,
    reviews_dir: Path,
    guidelines: Guidelines,
    params: dict[str, Any],
    outputs: Outputs = Outputs(),
) -> dict[str, Any]:
    table = read_parquet(source)
    decisions = reviews.load(reviews_dir, guidelines)
    labeled = apply(table, decisions, int(params["min_annotators"]), float(params["agree_share"]))
    ids = set(table.column("id").to_pylist())
    unknown = sorted(d.origin + " " + d.id for d in decisions.values() if d.id not in ids)
    status = Counter(labeled.column("label_status").to_pylist())
    metrics = {
        "records": labeled.num_rows,
        "status": dict(sorted(status.items())),
        "labels": dict(
            sorted(Counter(x for x in labeled.column("label").to_pylist() if x).items())
        ),
        "review_decisions": len(decisions),
        "reviews_applied": len(decisions) - len(unknown),
        # A decision for an id no export delivered is usually a typo in the id: shown, not fatal.
        "unknown_review_ids": unknown,
    }
    write_parquet(outputs.records, labeled)
    write_json(outputs.metrics, metrics)
    return metrics
