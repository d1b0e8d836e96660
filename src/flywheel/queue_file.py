"""The review queue of any annotated table (``flywheel queue FILE``): disagreements and low
model confidence, least confident first, by the same rules as the ``queue`` stage
(``flywheel.queue.reasons_for``, ``order_key``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel import tables
from flywheel.errors import InputError
from flywheel.queue import order_key, reasons_for


def from_table(
    table: pa.Table,
    path: Path,
    threshold: float,
    *,
    id_column: str = "id",
    confidence: str = "model_confidence",
    item: str | None = None,
    annotator: str | None = None,
    label: str | None = None,
) -> list[dict[str, Any]]:
    """The review queue of any annotated table: disagreements and low confidence, least confident first.

    Wide tables carry one ``label_<annotator>`` column per annotator; long tables one row per
    annotation, named by ``item``/``annotator``/``label``.
    """
    if confidence in table.column_names:
        try:
            table = table.set_column(
                table.column_names.index(confidence),
                confidence,
                table.column(confidence).cast(pa.float64()),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(
                f"{path} column {confidence!r} must hold numbers between 0 and 1; "
                "fix the values or pass --confidence COL."
            ) from None
    labels: dict[Any, set[str]] = {}
    conf: dict[Any, float | None] = {}
    if item is not None:
        tables.require_columns(
            table,
            path,
            {item: "--item", annotator or "annotator": "--annotator", label or "label": "--label"},
        )
        key = item
        for row in table.to_pylist():
            labels.setdefault(row[key], set())
            if row[label or "label"] is not None:
                labels[row[key]].add(str(row[label or "label"]))
            conf.setdefault(row[key], row.get(confidence))
    else:
        columns = tables.label_columns(table)
        if not columns:
            raise InputError(
                f"{path} has no label_<annotator> columns; for one row per annotation pass "
                "--item, --annotator and --label."
            )
        tables.require_columns(table, path, {id_column: "--id"})
        key = id_column
        for row in table.to_pylist():
            labels[row[key]] = {str(row[c]) for c in columns if row[c] not in (None, "")}
            conf[row[key]] = row.get(confidence)
    entries = []
    for rid, found in labels.items():
        status = "disputed" if len(found) > 1 else ("agreed" if found else "unlabeled")
        reasons = reasons_for(
            {"label_status": status, "model_confidence": conf[rid]}, None, threshold
        )
        if reasons:
            entries.append(
                {"id": rid, "reason": reasons[0], "reasons": reasons, "model_confidence": conf[rid]}
            )
    entries.sort(key=lambda e: order_key(e["reasons"], e["model_confidence"], str(e["id"]), []))
    return entries
