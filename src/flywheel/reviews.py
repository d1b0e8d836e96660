"""Reviewer decisions: ``data/reviews/*.jsonl``, one JSON object per line (schema/review.schema.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel import schemas
from flywheel.errors import InputError
from flywheel.guidelines import Guidelines

DEFAULT_DIR = Path("data/reviews")


@dataclass(frozen=True)
class Decision:
    id: str
    reviewer: str
    label: str
    decided_at: str
    guideline_version: str
    note: str | None
    origin: str

    def as_review(self) -> dict[str, Any]:
        return {
            "reviewer": self.reviewer,
            "label": self.label,
            "decided_at": self.decided_at,
            "guideline_version": self.guideline_version,
            "note": self.note,
        }


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def load(folder: Path, guidelines: Guidelines) -> dict[str, Decision]:
    """The latest decision per record id (by ``decided_at``, then file order).

    A decision that fails its schema or names an unknown label stops the run: a reviewer's
    judgement silently dropped would be worse than a rebuild that asks for a fix.
    """
    latest: dict[str, Decision] = {}
    for path in files(folder):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where} is not valid JSON ({exc.msg}); fix the line.") from None
            problems = schemas.errors("review", data)
            if problems:
                raise InputError(
                    f"{where} is not a valid review decision: {'; '.join(problems)}. "
                    "Fix the line (see schema/review.schema.json)."
                )
            if data["label"] not in guidelines.labels:
                raise InputError(
                    f"{where}: label '{data['label']}' is not in guidelines v{guidelines.version} "
                    f"(labels: {', '.join(guidelines.label_names)}); correct the decision."
                )
            d = Decision(
                data["id"],
                data["reviewer"],
                data["label"],
                data["decided_at"],
                data["guideline_version"],
                data.get("note"),
                where,
            )
            if d.id not in latest or d.decided_at >= latest[d.id].decided_at:
                latest[d.id] = d
    return latest
