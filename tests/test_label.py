from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel import guidelines, records, reviews
from flywheel import label as stage
from flywheel.errors import InputError


def ann(*labels: str, version: str = "1.2") -> list[dict[str, object]]:
    return [
        {"annotator": f"a{i}", "label": x, "guideline_version": version, "note": None}
        for i, x in enumerate(labels)
    ]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ((), (None, "unlabeled")),
        (("correct_and_polite",), (None, "unlabeled")),
        (("correct_and_polite", "correct_and_polite"), ("correct_and_polite", "agreed")),
        (("correct_and_polite", "hallucinated_promise"), (None, "disputed")),
        (("over_refusal",) * 3 + ("harsh_refusal",), ("over_refusal", "agreed")),
        (("over_refusal",) * 2 + ("harsh_refusal",), (None, "disputed")),
        (("over_refusal",) * 2 + ("harsh_refusal",) * 2, (None, "disputed")),
    ],
)
def test_decide(labels: tuple[str, ...], expected: tuple[str | None, str]) -> None:
    d = stage.decide(ann(*labels), min_annotators=2, agree_share=0.75)
    assert (d.label, d.status) == expected


def test_agreed_label_records_the_newest_guideline_version_among_its_votes() -> None:
    anns = ann("over_refusal", "over_refusal")
    anns[0]["guideline_version"] = "1.0"
    assert stage.decide(anns, 2, 1.0).guideline_version == "1.2"


def base_record(rid: str, labels: tuple[str, ...]) -> dict[str, object]:
    return {
        "id": rid,
        "source": "s",
        "export_id": "e",
        "round": 1,
        "reason": "thumbs_down",
        "prompt": "p",
        "response": "r",
        "annotations": ann(*labels),
        "label_status": "unlabeled",
        "reviewed": False,
        "error_category": "uncategorized",
        "content_hash": "0" * 32,
        "origin": "f:1",
    }


def write_reviews(folder: Path, lines: list[dict[str, object] | str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "r.jsonl").write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    )


def decision(rid: str, lab: str, at: str = "2026-10-01T10:00:00Z") -> dict[str, object]:
    return {
        "id": rid,
        "reviewer": "rev",
        "label": lab,
        "decided_at": at,
        "guideline_version": "1.2",
    }


def test_review_decision_overrides_annotations_and_latest_wins(tmp_path: Path) -> None:
    g = guidelines.load()
    write_reviews(
        tmp_path,
        [
            decision("s/1", "hallucinated_promise", "2026-10-02T10:00:00Z"),
            decision("s/1", "partially_correct", "2026-10-01T10:00:00Z"),
        ],
    )
    table = records.from_rows([base_record("s/1", ("correct_and_polite", "hallucinated_promise"))])
    (out,) = stage.apply(table, reviews.load(tmp_path, g), g, 2, 0.75).to_pylist()
    assert out["label"] == "hallucinated_promise" and out["label_status"] == "adjudicated"
    assert out["reviewed"] and out["review"]["reviewer"] == "rev"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"r.jsonl:1 is not valid JSON"),
        (
            json.dumps({"id": "s/1", "label": "x"}),
            r"r.jsonl:1 is not a valid review decision: .*'reviewer' is a required property",
        ),
        (json.dumps(decision("s/1", "nice")), r"r.jsonl:1: label 'nice' is not in guidelines v1.2"),
    ],
)
def test_bad_review_lines_stop_with_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    write_reviews(tmp_path, [line])
    with pytest.raises(InputError, match=message):
        reviews.load(tmp_path, guidelines.load())


LABELS = ["correct_and_polite", "over_refusal", "harsh_refusal"]
votes = st.lists(
    st.lists(
        st.tuples(st.sampled_from(LABELS), st.sampled_from(["1.0", "1.1", "1.2", "1.10"])),
        max_size=5,
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(votes, st.integers(1, 3), st.sampled_from([0.51, 0.6, 0.75, 1.0]))
def test_table_rule_matches_the_one_record_rule(
    rows: list[list[tuple[str, str]]], least: int, share: float
) -> None:
    recs = []
    for i, vs in enumerate(rows):
        rec = base_record(f"s/{i}", ())
        rec["annotations"] = [
            {"annotator": f"a{j}", "label": lab, "guideline_version": v, "note": None}
            for j, (lab, v) in enumerate(vs)
        ]
        recs.append(rec)
    got = stage.from_annotations(
        records.from_rows(recs), guidelines.load().label_names, least, share
    ).to_pylist()
    for rec, out in zip(recs, got, strict=True):
        d = stage.decide(rec["annotations"], least, share)
        assert (out["label"], out["label_status"], out["label_guideline_version"]) == (
            d.label,
            d.status,
            d.guideline_version,
        )
