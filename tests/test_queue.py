from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_pipeline import copy_sample

from flywheel import guidelines, pipeline, store
from flywheel import params as params_mod
from flywheel import queue as stage
from records_factory import record, table

G = guidelines.load()
PRIORITY = list(stage.ALL_REASONS)


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


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["agreed", "adjudicated", "disputed", "unlabeled"]),
        st.sampled_from(["over_refusal", "correct_and_polite", "hallucinated_promise"]),
        st.sampled_from(["1.0", "1.1", "1.2", None]),
        st.one_of(st.none(), st.floats(0, 1)),
        st.sampled_from(["ok", "hallucination", "uncategorized", "tone"]),
        st.booleans(),
        st.sampled_from([None, "duplicate"]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(rows_strategy)
def test_table_rule_matches_the_one_record_rule(spec: list[tuple[Any, ...]]) -> None:
    recs = []
    for i, (status, lab, version, conf, cat, reviewed, fate) in enumerate(spec):
        labelled = status in ("agreed", "adjudicated")
        recs.append(
            record(
                f"s/{i:03d}",
                label_status=status,
                label=lab if labelled else None,
                label_guideline_version=version if labelled else None,
                model_confidence=conf,
                error_category=cat,
                reviewed=reviewed,
                fate=fate,
                queue_reasons=["conflicting_duplicates"] if i % 7 == 3 else None,
            )
        )
    out, entries = stage.apply(table(recs), G, 0.6, PRIORITY)
    expected = {}
    for rec in recs:
        reasons = [] if rec["fate"] == "duplicate" else stage.reasons_for(rec, G, 0.6)
        if reasons:
            expected[rec["id"]] = reasons
    assert {e["id"]: e["reasons"] for e in entries} == expected
    keys = [
        stage.order_key(e["reasons"], e["model_confidence"], e["id"], PRIORITY) for e in entries
    ]
    assert keys == sorted(keys)
    assert {r["id"] for r in out.to_pylist() if r["fate"] == "queued"} == set(expected)


@pytest.mark.parametrize("limit", [None, 7, 5000])
def test_the_merged_queue_equals_one_build_over_every_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int | None
) -> None:
    """The stage decides each partition on its own and merges their queued records; deciding
    the whole table at once must give the same queue, in the same order, and the same first
    ``export_limit`` entries with their texts (which the stage keeps per partition)."""
    copy_sample(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in pipeline.ORDER[: pipeline.ORDER.index("queue")]:
        pipeline.run_stage(name)
    pipeline.run_stage("queue", overrides={"export_limit": limit})
    assert_one_build({"export_limit": limit})


def assert_one_build(overrides: dict[str, Any]) -> None:
    """The queue files equal deciding every record at once, with the queue's params and
    ``overrides``."""
    params = {**params_mod.load(Path("params.yaml"))["queue"], **overrides}
    whole = store.load(pipeline.LAYERS["queue"], list(stage.READS))
    _, expected, rows, _ = stage.build(
        whole,
        guidelines.load(Path("guidelines/labels.yaml")),
        float(params["confidence_threshold"]),
        list(params["priority"]),
    )
    assert expected.num_rows > 10
    assert pq.read_table("data/queue.parquet").equals(expected)
    limit = params["export_limit"]
    n = expected.num_rows if limit is None else min(limit, expected.num_rows)
    texts = store.take(pipeline.LAYERS["queue"], stage.ENTRY_FIELDS, rows[:n])
    lines = Path("data/queue.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == stage.entries(expected.slice(0, n), texts)


def test_a_recomputed_partition_reads_only_the_texts_its_entries_lacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition decided again keeps the texts of the records its previous entries held
    (same ingest identity); only newly queued records' texts are read. Another texts key (a
    re-ingested partition) reads them all. The queue equals one build either way."""
    copy_sample(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in pipeline.ORDER[: pipeline.ORDER.index("queue")]:
        pipeline.run_stage(name)
    low = {"export_limit": None, "confidence_threshold": 0.3}
    before = pipeline.run_stage("queue", overrides=low)["queued"]
    read: list[int] = []
    real = store.take

    def counting(layers: Any, columns: Any, rows: Any) -> Any:
        if list(columns) == list(stage.HEAD_FIELDS):
            read.append(len(rows))
        return real(layers, columns, rows)

    monkeypatch.setattr(store, "take", counting)
    high = {"export_limit": None, "confidence_threshold": 0.9}
    after = pipeline.run_stage("queue", overrides=high)["queued"]
    assert after > before
    assert sum(read) == after - before
    assert_one_build(high)
    lines = Path("data/queue.jsonl").read_text().splitlines()
    read.clear()
    monkeypatch.setattr(stage, "_texts_key", lambda layers, partition: "re-ingested")
    pipeline.run_stage("queue", overrides={**high, "priority": ["unlabeled"]})
    assert sum(read) == after  # every text read again
    pipeline.run_stage("queue", overrides=high)
    assert Path("data/queue.jsonl").read_text().splitlines() == lines
