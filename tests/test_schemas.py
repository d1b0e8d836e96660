"""``flywheel.schemas.check`` remembers valid documents, and only those."""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from flywheel import schemas
from flywheel.errors import ConfigError
from flywheel.io import read_yaml

GOOD: dict[str, Any] = read_yaml(Path(__file__).resolve().parents[1] / "params.yaml")


def annotators(value: Any) -> dict[str, Any]:
    """The shipped params with ``label.min_annotators`` set to ``value``."""
    out = copy.deepcopy(GOOD)
    out["label"]["min_annotators"] = value
    return out


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every instance ``schemas.errors`` validates."""
    seen: list[Any] = []
    real = schemas.errors

    def errors(name: str, instance: Any) -> list[str]:
        seen.append(instance)
        return real(name, instance)

    monkeypatch.setattr(schemas, "errors", errors)
    return seen


def test_a_valid_document_is_validated_once(tmp_path: Path, counted: list[Any]) -> None:
    cache = tmp_path / "verdicts.json"
    for _ in range(3):
        schemas.check("params", GOOD, "params.yaml", ConfigError, cache)
    assert counted == [GOOD]


def test_an_invalid_document_is_validated_every_time(tmp_path: Path, counted: list[Any]) -> None:
    cache = tmp_path / "verdicts.json"
    bad = annotators("two")
    for _ in range(2):
        with pytest.raises(ConfigError, match="min_annotators"):
            schemas.check("params", bad, "params.yaml", ConfigError, cache)
    assert counted == [bad, bad]
    assert not cache.exists()


@pytest.mark.parametrize(
    "other",
    [
        annotators(GOOD["label"]["min_annotators"] + 1),  # another value
        annotators(float(GOOD["label"]["min_annotators"])),  # equal in Python, not in JSON
        annotators(True),
        annotators(str(GOOD["label"]["min_annotators"])),
        annotators(datetime.date(2026, 1, 2)),
    ],
)
def test_another_document_is_validated(
    tmp_path: Path, counted: list[Any], other: dict[str, Any]
) -> None:
    cache = tmp_path / "verdicts.json"
    schemas.check("params", GOOD, "params.yaml", ConfigError, cache)
    with contextlib.suppress(ConfigError):  # some are invalid: validated is what counts
        schemas.check("params", other, "params.yaml", ConfigError, cache)
    assert counted == [GOOD, other]


def test_another_schema_is_validated(tmp_path: Path, counted: list[Any]) -> None:
    cache = tmp_path / "verdicts.json"
    schemas.check("params", GOOD, "params.yaml", ConfigError, cache)
    with pytest.raises(ConfigError):
        schemas.check("guidelines", GOOD, "labels.yaml", ConfigError, cache)
    assert counted == [GOOD, GOOD]


@pytest.mark.parametrize("content", ["", "not json", '{"a": 1}', "[1, 2]"])
def test_an_unreadable_record_means_validating(
    tmp_path: Path, counted: list[Any], content: str
) -> None:
    cache = tmp_path / "verdicts.json"
    cache.write_text(content)
    schemas.check("params", GOOD, "params.yaml", ConfigError, cache)
    schemas.check("params", GOOD, "params.yaml", ConfigError, cache)
    assert counted == [GOOD]


def test_the_record_keeps_the_latest_verdicts(tmp_path: Path) -> None:
    cache = tmp_path / "verdicts.json"
    for n in range(schemas.KEEP + 5):
        schemas.check("params", annotators(n + 1), "params.yaml", ConfigError, cache)
    kept = json.loads(cache.read_text())
    assert len(kept) == schemas.KEEP
    assert kept[0] == schemas._digest("params", annotators(6))
    assert kept[-1] == schemas._digest("params", annotators(schemas.KEEP + 5))
