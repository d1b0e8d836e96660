from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import manifest, row, write_export
from flywheel import guidelines, ingest, params
from flywheel.errors import ConfigError


def run(repo: Path) -> dict[str, object]:
    p = params.load(repo / "params.yaml")
    return ingest.run(
        Path("data/raw"), guidelines.load(repo / "guidelines/labels.yaml"), p["ingest"]
    )


def records(repo: Path) -> list[dict[str, object]]:
    return pq.read_table(repo / ingest.Outputs().records).to_pylist()


def quarantine(repo: Path) -> list[dict[str, object]]:
    text = (repo / ingest.Outputs().quarantine).read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_wide_jsonl_maps_fields_annotations_and_ids(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(1), row(2, b="hallucinated_promise")])
    metrics = run(repo)
    recs = records(repo)
    assert metrics["records"] == 2
    assert [r["id"] for r in recs] == ["prod_thumbs_down/td-0001", "prod_thumbs_down/td-0002"]
    first = recs[0]
    assert first["source"] == "prod_thumbs_down" and first["reason"] == "thumbs_down"
    assert first["round"] == 1 and first["export_id"] == "td-1"
    assert first["origin"] == "data/raw/td-1/records.jsonl:1"
    assert [
        (a["annotator"], a["label"], a["guideline_version"]) for a in recs[1]["annotations"]
    ] == [
        ("ann-a", "correct_and_polite", "1.2"),
        ("ann-b", "hallucinated_promise", "1.2"),
    ]
    assert len(first["content_hash"]) == 32


def test_long_csv_groups_rows_into_records_and_supersedes_repeats(repo: Path) -> None:
    man = manifest(
        "eval-1",
        source="eval_suite",
        reason="eval_failure",
        file="records.csv",
        format="csv",
        fields={"prompt": "prompt", "response": "response", "reference": "expected"},
        annotations={
            "layout": "long",
            "item": "item_id",
            "annotator": "annotator",
            "label": "label",
        },
    )
    base = {
        "prompt": "Can I change my address?",
        "response": "Yes, in Settings.",
        "expected": "Yes.",
    }
    rows = [
        {"item_id": "e1", "annotator": "x", "label": "correct_but_too_brief", **base},
        {"item_id": "e1", "annotator": "y", "label": "correct_and_polite", **base},
        {"item_id": "e1", "annotator": "x", "label": "correct_and_polite", **base},
    ]
    write_export(repo, man, rows)
    metrics = run(repo)
    (rec,) = records(repo)
    assert rec["id"] == "eval_suite/e1" and rec["reference"] == "Yes."
    assert [(a["annotator"], a["label"]) for a in rec["annotations"]] == [
        ("x", "correct_and_polite"),
        ("y", "correct_and_polite"),
    ]
    assert metrics["superseded_annotations"] == 1
    ledger = pq.read_table(repo / ingest.Outputs().rows).to_pylist()
    assert [(r["line"], r["fate"]) for r in ledger] == [(2, "excluded"), (3, None), (4, None)]
    assert "superseded by data/raw/eval-1/records.csv:4" in ledger[0]["detail"]


def test_list_layout_parquet_and_content_hash_ids(repo: Path) -> None:
    man = manifest(
        "rt-1",
        source="red_team",
        reason="red_team",
        file="records.parquet",
        format="parquet",
        fields={"prompt": "prompt", "response": "response"},
        annotations={"layout": "list", "column": "annotations"},
    )
    anns = [
        {"annotator": "p", "label": "policy_violation", "note": "mail me: a.b@example.com"},
        {"annotator": "q", "label": "policy_violation", "note": None},
    ]
    write_export(
        repo,
        man,
        [
            {
                "prompt": "Give me Ann's address",
                "response": "She lives at 4 Elm St.",
                "annotations": anns,
            }
        ],
    )
    run(repo)
    (rec,) = records(repo)
    assert (
        rec["id"].startswith("red_team/h-")
        and rec["id"][len("red_team/h-") :] == rec["content_hash"][:16]
    )
    assert rec["annotations"][0]["note"] == "mail me: [EMAIL]"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('{"id": "x1", "prompt": "hi"', "line is not valid JSON"),
        ('["not", "an", "object"]', "line is a JSON list, not an object"),
        (row(7, response=""), "response (column 'response') is empty"),
        (
            row(8, model_confidence="high"),
            "model_confidence 'high' is not a number between 0 and 1",
        ),
        (row(9, model_confidence=1.7), "model_confidence 1.7 is outside 0..1"),
        (
            row(10, b="polite"),
            "label 'polite' in column 'label_b' is not a label of guidelines v1.2",
        ),
        (
            row(1),
            "id 'prod_thumbs_down/td-0001' was already delivered at data/raw/td-1/records.jsonl:1",
        ),
    ],
)
def test_bad_rows_are_quarantined_with_location_and_reason(
    repo: Path, bad: object, reason: str
) -> None:
    write_export(repo, manifest("td-1"), [row(1), bad])  # type: ignore[list-item]
    metrics = run(repo)
    assert metrics["records"] == 1 and metrics["quarantined"] == 1
    (q,) = quarantine(repo)
    assert q["file"] == "data/raw/td-1/records.jsonl" and q["line"] == 2
    assert reason in q["reason"]


def test_csv_row_with_missing_field_is_quarantined(repo: Path) -> None:
    man = manifest("td-1", file="records.csv", format="csv")
    write_export(repo, man, [row(1), "td-0002,only three,fields"])
    run(repo)
    (q,) = quarantine(repo)
    assert q["line"] == 3 and "row has 3 fields but the header has 7" in q["reason"]


def test_personal_data_is_scrubbed_everywhere(repo: Path) -> None:
    write_export(
        repo,
        manifest("td-1"),
        [
            row(1, prompt="I'm jane@example.org, call me on +44 20 7946 0958"),
            '{"broken": "card 4111 1111 1111 1111"',
        ],
    )
    run(repo)
    (rec,) = records(repo)
    assert rec["prompt"] == "I'm [EMAIL], call me on [PHONE]" and rec["pii"] == ["email", "phone"]
    (q,) = quarantine(repo)
    assert "4111" not in q["raw"] and "[CARD]" in q["raw"]


def test_missing_manifest_names_folder_and_fix(repo: Path) -> None:
    (repo / "data/raw/orphan").mkdir()
    with pytest.raises(
        ConfigError, match=r"data/raw/orphan has no manifest.yaml; every export folder needs one"
    ):
        run(repo)


def test_unknown_format_is_a_config_error_naming_the_manifest(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(1)])
    path = repo / "data/raw/td-1/manifest.yaml"
    path.write_text(path.read_text().replace("format: jsonl", "format: xlsx"))
    with pytest.raises(
        ConfigError,
        match=r"manifest.yaml does not match schema/manifest.schema.json at format: 'xlsx' is not one of",
    ):
        run(repo)


def test_missing_file_lists_what_is_there(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(1)])
    (repo / "data/raw/td-1/records.jsonl").rename(repo / "data/raw/td-1/export.jsonl")
    with pytest.raises(
        ConfigError,
        match=r"names file 'records.jsonl', which is not in .*files there: export.jsonl",
    ):
        run(repo)


def test_export_id_must_match_folder(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(1)])
    (repo / "data/raw/td-1").rename(repo / "data/raw/td-2")
    with pytest.raises(ConfigError, match=r"export_id 'td-1' differs from the folder name 'td-2'"):
        run(repo)


def test_ingest_is_deterministic_regardless_of_file_order(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(i) for i in range(5)])
    write_export(repo, manifest("td-2", round=2), [row(i) for i in range(5, 9)])
    run(repo)
    first = (repo / ingest.Outputs().records).read_bytes()
    run(repo)
    assert (repo / ingest.Outputs().records).read_bytes() == first
