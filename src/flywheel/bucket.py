"""Stage ``bucket``: the error category of each record.

From the final label's mapping in the guidelines; for a record without a final label, the first
detector rule in ``params.yaml: bucket.detectors`` whose pattern matches; else ``uncategorized``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel import records
from flywheel.errors import ConfigError
from flywheel.guidelines import UNCATEGORIZED, Guidelines
from flywheel.io import read_parquet, write_json, write_parquet


@dataclass(frozen=True)
class Detector:
    category: str
    pattern: re.Pattern[str]
    field: str


def detectors(params: dict[str, Any], guidelines: Guidelines) -> list[Detector]:
    out = []
    for i, rule in enumerate(params["detectors"]):
        if rule["category"] not in guidelines.categories:
            raise ConfigError(
                f"params.yaml: bucket.detectors[{i}] names category '{rule['category']}', which is "
                f"not in the guidelines (categories: {', '.join(guidelines.categories)})."
            )
        try:
            pattern = re.compile(rule["pattern"])
        except re.error as exc:
            raise ConfigError(
                f"params.yaml: bucket.detectors[{i}].pattern is not a valid regular expression ({exc})."
            ) from None
        out.append(Detector(rule["category"], pattern, rule.get("field", "response")))
    return out


def categorize(
    row: dict[str, Any], guidelines: Guidelines, rules: list[Detector]
) -> tuple[str, str]:
    """(error_category, category_source) for one record."""
    if row["label"] is not None:
        return guidelines.category_of(row["label"]), "label"
    for rule in rules:
        if rule.pattern.search(row[rule.field]):
            return rule.category, "detector"
    return UNCATEGORIZED, "none"


def apply(table: pa.Table, guidelines: Guidelines, rules: list[Detector]) -> pa.Table:
    rows = table.to_pylist()
    for row in rows:
        row["error_category"], row["category_source"] = categorize(row, guidelines, rules)
    return records.conform(records.from_rows(rows))


@dataclass(frozen=True)
class Outputs:
    records: Path = Path("data/interim/bucket.parquet")
    metrics: Path = Path("metrics/bucket.json")


def run(
    source: Path, guidelines: Guidelines, params: dict[str, Any], outputs: Outputs = Outputs()
) -> dict[str, Any]:
    table = apply(read_parquet(source), guidelines, detectors(params, guidelines))
    cats = table.column("error_category").to_pylist()
    srcs = table.column("category_source").to_pylist()
    metrics = {
        "records": table.num_rows,
        "categories": dict(sorted(Counter(cats).items())),
        "by_detector": dict(
            sorted(Counter(c for c, s in zip(cats, srcs, strict=True) if s == "detector").items())
        ),
        "uncategorized": cats.count(UNCATEGORIZED),
    }
    write_parquet(outputs.records, table)
    write_json(outputs.metrics, metrics)
    return metrics
