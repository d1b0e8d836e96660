"""Stage ``bucket``: the error category of each record.

From the final label's mapping in the guidelines; for a record without a final label, the first
detector rule in ``params.yaml: bucket.detectors`` whose pattern matches; else ``uncategorized``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import parts, records, store
from flywheel.errors import ConfigError
from flywheel.guidelines import UNCATEGORIZED, Guidelines
from flywheel.io import write_json

log = logging.getLogger(__name__)


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
    """(error_category, category_source) for one record: the rule ``apply`` vectorizes."""
    if row["label"] is not None:
        return guidelines.category_of(row["label"]), "label"
    for rule in rules:
        if rule.pattern.search(row[rule.field]):
            return rule.category, "detector"
    return UNCATEGORIZED, "none"


def apply(table: pa.Table, guidelines: Guidelines, rules: list[Detector]) -> pa.Table:
    """Fill error_category and category_source for every record at once.

    Detector patterns run through Arrow's RE2 kernels on the unlabelled rows only; a pattern
    RE2 cannot run (look-around, backreferences) falls back to Python's ``re`` on those rows.
    """
    labels = table.column("label")
    mapping = {name: guidelines.category_of(name) for name in guidelines.label_names}
    category = np.asarray(
        pc.fill_null(pc.index_in(labels, value_set=pa.array(list(mapping))), -1).to_numpy(
            zero_copy_only=False
        )
    )
    names = np.array([*mapping.values(), UNCATEGORIZED], dtype=object)
    out = names[np.where(category < 0, len(mapping), category)]
    source = np.where(category >= 0, "label", "none").astype(object)
    pending = np.flatnonzero(category < 0)
    for rule in rules:
        if not len(pending):
            break
        texts = table.column(rule.field).take(pa.array(pending))
        hit = _search(rule, texts)
        out[pending[hit]] = rule.category
        source[pending[hit]] = "detector"
        pending = pending[~hit]
    return records.typed(
        records.replace(
            table,
            error_category=pa.array(out, pa.string()),
            category_source=pa.array(source, pa.string()),
        )
    )


def _search(rule: Detector, texts: pa.ChunkedArray) -> np.ndarray[Any, np.dtype[np.bool_]]:
    try:
        found = pc.match_substring_regex(texts, rule.pattern.pattern)
        return np.asarray(pc.fill_null(found, False).to_numpy(zero_copy_only=False), dtype=bool)
    except pa.ArrowInvalid:
        return np.array([bool(rule.pattern.search(t)) for t in texts.to_pylist()], dtype=bool)


@dataclass(frozen=True)
class Outputs:
    records: Path = Path("data/interim/bucket")  # one patch file per partition (flywheel.parts)
    metrics: Path = Path("metrics/bucket.json")


COLUMNS = ("error_category", "category_source")
CODE = ("bucket", "records")  # the modules whose code decides a partition's categories


def run(
    layers: Sequence[Path],
    guidelines: Guidelines,
    params: dict[str, Any],
    outputs: Outputs = Outputs(),
) -> dict[str, Any]:
    """Categorize each partition whose inputs changed: its records, its labels (the key of its
    label file), ``params`` or the guidelines (``flywheel.parts``)."""
    rules = detectors(params, guidelines)
    fields = sorted({r.field for r in rules})
    files = store.partitions(layers[0])
    common = parts.stage_key(CODE, params, guidelines)
    keys = [parts.key(common, parts.identity(f), parts.upstream(layers, f)) for f in files]

    def compute(i: int) -> tuple[pa.Table, parts.Counts]:
        one = store.partition_layers(layers, files[i])
        table = apply(store.load(one, ["id", "label", *fields]), guidelines, rules)
        cats, srcs = table.column("error_category"), table.column("category_source")
        counts = {
            "records": table.num_rows,
            "categories": records.counts(cats),
            "by_detector": records.counts(cats.filter(pc.equal(srcs, "detector"))),
            "uncategorized": int(pc.sum(pc.equal(cats, UNCATEGORIZED)).as_py() or 0),
        }
        return table, counts

    counts, computed = parts.refresh(outputs.records, files, keys, COLUMNS, compute)
    log.info("bucket: %d of %d partitions categorized", computed, len(files))
    total = parts.add(counts)
    metrics = {
        "records": total.get("records", 0),
        "categories": total.get("categories", {}),
        "by_detector": total.get("by_detector", {}),
        "uncategorized": total.get("uncategorized", 0),
    }
    write_json(outputs.metrics, metrics)
    return metrics
