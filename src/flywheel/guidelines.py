"""The label system as data: ``guidelines/labels.yaml``, checked, queried and rendered."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel import schemas
from flywheel.errors import ConfigError
from flywheel.io import read_yaml

DEFAULT_PATH = Path("guidelines/labels.yaml")
UNCATEGORIZED = "uncategorized"


def version_key(version: str | None) -> tuple[int, int]:
    """``"1.10"`` sorts after ``"1.9"``; a missing version sorts first."""
    if not version:
        return (0, 0)
    major, _, minor = version.partition(".")
    return (int(major), int(minor or 0))


@dataclass(frozen=True)
class Change:
    version: str
    date: str
    summary: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Guidelines:
    version: str
    task: str
    ordinal: bool
    labels: dict[str, dict[str, Any]]
    categories: dict[str, dict[str, str]]
    changes: tuple[Change, ...]

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.labels)

    def category_of(self, label: str) -> str:
        return str(self.labels[label]["error_category"])

    def action_of(self, label: str) -> str:
        return str(self.labels[label]["action"])

    def risk_of(self, category: str) -> str:
        return self.categories.get(category, {}).get("risk", "medium")

    def changed_since(self, version: str | None) -> frozenset[str]:
        """Labels whose rule changed in a version later than ``version``."""
        key = version_key(version)
        return frozenset(
            label for c in self.changes if version_key(c.version) > key for label in c.labels
        )

    def boundary_pairs(self) -> dict[frozenset[str], list[str]]:
        """Unordered label pair -> the ``why`` of each boundary example that separates them."""
        pairs: dict[frozenset[str], list[str]] = {}
        for spec in self.labels.values():
            for ex in spec.get("boundary_examples", []):
                pairs.setdefault(frozenset((ex["label"], ex["versus"])), []).append(ex["why"])
        return pairs


def load(path: Path = DEFAULT_PATH) -> Guidelines:
    """Read, schema-check and cross-check the guidelines file."""
    data = read_yaml(path)
    schemas.check("guidelines", data, path, ConfigError)
    labels: dict[str, dict[str, Any]] = data["labels"]
    categories: dict[str, dict[str, str]] = data["categories"]
    problems: list[str] = []
    for name, spec in labels.items():
        if spec["error_category"] not in categories:
            problems.append(
                f"label '{name}' maps to error category '{spec['error_category']}', "
                f"which is not under 'categories'"
            )
        for ex in spec.get("boundary_examples", []):
            if ex["label"] == ex["versus"]:
                problems.append(
                    f"a boundary example of '{name}' sets label and versus both to '{ex['label']}'"
                )
            for key in ("label", "versus"):
                if ex[key] not in labels:
                    problems.append(
                        f"a boundary example of '{name}' names unknown label '{ex[key]}'"
                    )
    changes = tuple(
        Change(c["version"], str(c["date"]), c["summary"], tuple(c["labels"]))
        for c in data["changes"]
    )
    for c in changes:
        problems.extend(
            f"change {c.version} names unknown label '{label}'"
            for label in c.labels
            if label not in labels
        )
        if version_key(c.version) > version_key(data["version"]):
            problems.append(
                f"change {c.version} is newer than the file's version {data['version']}"
            )
    if changes and changes[-1].version != data["version"]:
        problems.append(
            f"the last change is {changes[-1].version} but the version is {data['version']}; "
            "add a change entry for the new version"
        )
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems) + ". Fix the guidelines file.")
    return Guidelines(
        version=data["version"],
        task=data["task"],
        ordinal=bool(data.get("ordinal", False)),
        labels=labels,
        categories=categories,
        changes=changes,
    )


def render(g: Guidelines) -> str:
    """The guidelines as Markdown for annotators."""
    out = [f"# Labelling guidelines: {g.task}", "", f"Version {g.version}.", ""]
    out += ["| label | error category | risk | action |", "|---|---|---|---|"]
    for name, spec in g.labels.items():
        cat = spec["error_category"]
        out.append(f"| `{name}` | {cat} | {g.risk_of(cat)} | {spec['action']} |")
    for name, spec in g.labels.items():
        out += ["", f"## `{name}`", "", spec["definition"].strip(), ""]
        out += [f"**Applies when:** {spec['applies_when'].strip()}", ""]
        for title, key in (
            ("Positive examples", "positive_examples"),
            ("Negative examples", "negative_examples"),
        ):
            out += [f"### {title}", ""]
            for ex in spec[key]:
                out.append(
                    f"- **User:** {ex['prompt']}  \n  **Reply:** {ex['response']}  \n  *Why:* {ex['why']}"
                )
            out.append("")
        if spec.get("boundary_examples"):
            out += ["### Boundary examples", ""]
            for ex in spec["boundary_examples"]:
                out.append(
                    f"- `{ex['label']}`, not `{ex['versus']}`. **User:** {ex['prompt']}  \n"
                    f"  **Reply:** {ex['response']}  \n  *Why:* {ex['why']}"
                )
            out.append("")
    out += ["## Changes", ""]
    for c in reversed(g.changes):
        affected = ", ".join(f"`{x}`" for x in c.labels) or "none"
        out.append(f"- **{c.version}** ({c.date}): {c.summary} Labels affected: {affected}.")
    return "\n".join(out).rstrip() + "\n"
