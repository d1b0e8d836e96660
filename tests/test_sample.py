"""The committed sample (data/raw, data/reviews, guidelines) is what scripts/make_sample.py makes,
and it has the shape the pipeline is built and tested against."""

from __future__ import annotations

import csv
import datetime
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from flywheel import schemas

REPO = Path(__file__).resolve().parent.parent
SCHEMA_DIR = REPO / "schema"
PACKAGE_SCHEMAS = REPO / "src" / "flywheel" / "schema"
SCRIPT = REPO / "scripts" / "make_sample.py"
GENERATED = ("data/raw", "data/reviews")
MAX_BYTES = 2 * 1024 * 1024

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    """RFC 3339 date-time: "T" separator and explicit offset (jsonschema skips it otherwise)."""
    if not isinstance(value, str):
        return True
    if "T" not in value.upper():
        raise ValueError(f"{value!r} has no 'T' separator")
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time-zone offset")
    return True


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


def errors(v: Draft202012Validator, doc: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in v.iter_errors(doc)
    ]


def tree(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for sub in GENERATED:
        base = root / sub
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.name != ".gitkeep":
                out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--quiet"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out


@pytest.fixture(scope="module")
def manifests() -> list[tuple[Path, dict[str, Any]]]:
    paths = sorted((REPO / "data" / "raw").glob("*/manifest.yaml"))
    assert paths, "no exports under data/raw: run scripts/make_sample.py"
    return [(p, yaml.safe_load(p.read_text(encoding="utf-8"))) for p in paths]


@pytest.fixture(scope="module")
def guidelines() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        (REPO / "guidelines" / "labels.yaml").read_text(encoding="utf-8")
    )
    return doc


@pytest.fixture(scope="module")
def reviews() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((REPO / "data" / "reviews").glob("*.jsonl")):
        out.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    assert out, "no review decisions under data/reviews"
    return out


@pytest.mark.parametrize("name", schemas.NAMES)
def test_every_shipped_schema_is_valid_draft_2020_12(name: str) -> None:
    """flywheel.schemas.validator does not check its schemas at run time; this does."""
    text = (PACKAGE_SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8")
    Draft202012Validator.check_schema(json.loads(text))
    assert text == (SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")


def test_committed_sample_is_what_the_script_makes(generated: Path) -> None:
    committed, fresh = tree(REPO), tree(generated)
    assert sorted(committed) == sorted(fresh), (
        "file sets differ; rerun `python scripts/make_sample.py`: "
        f"only committed {sorted(set(committed) - set(fresh))}, "
        f"only generated {sorted(set(fresh) - set(committed))}"
    )
    changed = [name for name in fresh if committed[name] != fresh[name]]
    assert not changed, f"stale files, rerun `python scripts/make_sample.py`: {changed}"


def test_generator_is_deterministic(generated: Path, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--quiet"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tree(tmp_path) == tree(generated)


def test_sample_is_small() -> None:
    total = sum(len(b) for b in tree(REPO).values())
    assert 0 < total < MAX_BYTES, f"sample is {total} bytes"


def test_guidelines_validate(guidelines: dict[str, Any]) -> None:
    assert errors(validator("guidelines.schema.json"), guidelines) == []
    categories = guidelines["categories"]
    labels = guidelines["labels"]
    for name, label in labels.items():
        assert label["error_category"] in categories, name
        assert len(label["positive_examples"]) >= 2, name
        assert len(label["negative_examples"]) >= 2, name
        for example in label.get("boundary_examples", []):
            assert {example["label"], example["versus"]} <= set(labels), (name, example)
    assert guidelines["version"] == guidelines["changes"][-1]["version"]
    for change in guidelines["changes"]:
        assert set(change["labels"]) <= set(labels), change["version"]


def test_guidelines_cover_the_lesson_boundaries(guidelines: dict[str, Any]) -> None:
    pairs = {
        frozenset((b["label"], b["versus"]))
        for label in guidelines["labels"].values()
        for b in label.get("boundary_examples", [])
    }
    for a, b in [
        ("correct_and_polite", "hallucinated_promise"),
        ("partially_correct", "hallucinated_promise"),
        ("harsh_refusal", "correct_and_polite"),
        ("harsh_refusal", "over_refusal"),
        ("partially_correct", "correct_but_too_brief"),
    ]:
        assert frozenset((a, b)) in pairs, f"no boundary example for {a} vs {b}"
    # Deliberately undocumented: the agreement analysis is expected to point at it.
    assert frozenset(("format_error", "correct_but_too_brief")) not in pairs


def test_manifests_validate(
    manifests: list[tuple[Path, dict[str, Any]]], guidelines: dict[str, Any]
) -> None:
    v = validator("manifest.schema.json")
    versions = {c["version"] for c in guidelines["changes"]}
    for path, m in manifests:
        assert errors(v, m) == [], path
        assert m["export_id"] == path.parent.name, path
        assert (path.parent / m["file"]).is_file(), path
        assert m["file"].endswith("." + m["format"]), path
        assert m["guideline_version"] in versions, path


def test_sample_has_the_required_variety(manifests: list[tuple[Path, dict[str, Any]]]) -> None:
    ms = [m for _, m in manifests]
    assert len({m["source"] for m in ms}) >= 3
    assert len({m["round"] for m in ms}) >= 3
    assert {"wide", "long", "list"} <= {m["annotations"]["layout"] for m in ms}
    assert {"jsonl", "csv"} <= {m["format"] for m in ms}
    for rnd in {m["round"] for m in ms}:
        assert 3 <= sum(1 for m in ms if m["round"] == rnd) <= 4, f"round {rnd}"


def _native_ids(path: Path, m: dict[str, Any]) -> set[str]:
    """Native ids of the rows that can be read at all (malformed rows are part of the sample)."""
    column = m["fields"]["native_id"]
    data = path.parent / m["file"]
    ids: set[str] = set()
    if m["format"] == "jsonl":
        for line in data.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            ids.add(row[column])
    else:
        with open(data, encoding="utf-8", newline="") as f:
            ids.update(row[column] for row in csv.DictReader(f))
    return ids


def test_reviews_validate(
    reviews: list[dict[str, Any]],
    guidelines: dict[str, Any],
    manifests: list[tuple[Path, dict[str, Any]]],
) -> None:
    v = validator("review.schema.json")
    labels = set(guidelines["labels"])
    for decision in reviews:
        assert errors(v, decision) == [], decision
        assert decision["label"] in labels, decision
    known = {f"{m['source']}/{nid}" for path, m in manifests for nid in _native_ids(path, m)}
    dangling = [d["id"] for d in reviews if d["id"] not in known]
    # Exactly one decision carries a hand-typed id with a typo; the pipeline must report it.
    assert len(dangling) == 1, dangling
