from __future__ import annotations

from flywheel import guidelines
from flywheel import queue as stage
from records_factory import record, table

G = guidelines.load()
PRIORITY = [
    "guideline_changed",
    "disagreement",
    "conflicting_duplicates",
    "high_risk",
    "low_confidence",
    "uncategorized",
    "unlabeled",
]


def test_reasons() -> None:
    agreed = {
        "label": "correct_and_polite",
        "label_status": "agreed",
        "error_category": "ok",
        "label_guideline_version": "1.2",
    }
    assert stage.reasons_for(record("s/1", **agreed, model_confidence=0.9), G, 0.6) == []
    assert stage.reasons_for(record("s/1", **agreed, model_confidence=0.5), G, 0.6) == [
        "low_confidence"
    ]
    assert (
        stage.reasons_for(
            record("s/1", **{**agreed, "reviewed": True}, model_confidence=0.5), G, 0.6
        )
        == []
    )
    disputed = record("s/1", label_status="disputed", error_category="hallucination")
    assert stage.reasons_for(disputed, G, 0.6) == ["disagreement", "high_risk"]
    assert stage.reasons_for(record("s/1"), G, 0.6) == ["uncategorized", "unlabeled"]


def test_guideline_change_requeues_labels_decided_under_the_old_rule() -> None:
    old = record(
        "s/1",
        label="over_refusal",
        label_status="agreed",
        error_category="over_refusal",
        label_guideline_version="1.0",
    )
    assert stage.reasons_for(old, G, 0.6) == ["guideline_changed"]
    same_label_new_rule = {**old, "label_guideline_version": "1.1"}
    assert stage.reasons_for(same_label_new_rule, G, 0.6) == []
    unaffected = {**old, "label": "correct_and_polite", "error_category": "ok"}
    assert stage.reasons_for(unaffected, G, 0.6) == []


def test_queue_order_is_priority_then_confidence_then_id_and_duplicates_are_skipped() -> None:
    rows = [
        record(
            "s/1",
            label="correct_and_polite",
            label_status="agreed",
            error_category="ok",
            label_guideline_version="1.2",
            model_confidence=0.2,
        ),
        record("s/2", label_status="disputed", error_category="tone", model_confidence=0.55),
        record("s/3", label_status="disputed", error_category="tone", model_confidence=0.35),
        record("s/4", label_status="disputed", error_category="tone", fate="duplicate"),
    ]
    out, entries = stage.apply(table(rows), G, 0.6, PRIORITY)
    assert [e["id"] for e in entries] == ["s/3", "s/2", "s/1"]
    assert [e["position"] for e in entries] == [1, 2, 3]
    fates = {r["id"]: r["fate"] for r in out.to_pylist()}
    assert fates == {"s/1": "queued", "s/2": "queued", "s/3": "queued", "s/4": "duplicate"}
