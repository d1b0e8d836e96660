"""Build record tables for stage tests without going through ingest."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from flywheel import records
from flywheel.ingest import content_hash


def record(
    rid: str, prompt: str = "Where is my parcel?", response: str = "It ships Monday.", **kw: Any
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": rid,
        "source": rid.split("/")[0],
        "export_id": "e1",
        "round": 1,
        "reason": "thumbs_down",
        "prompt": prompt,
        "response": response,
        "annotations": [],
        "label": None,
        "label_status": "unlabeled",
        "reviewed": False,
        "error_category": "uncategorized",
        "content_hash": content_hash(prompt, response),
        "origin": f"data/raw/e1/r.jsonl:{rid}",
    }
    base.update(kw)
    return base


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return records.conform(records.from_rows(rows))
