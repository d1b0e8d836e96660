from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel import dedup, guidelines
from records_factory import record, table

G = guidelines.load()
FIELDS = ["prompt", "response"]


def test_exact_duplicates_after_normalization_share_a_cluster() -> None:
    out = dedup.apply(
        table(
            [
                record("s/1", response="It ships Monday."),
                record("s/2", response="  it SHIPS   monday. "),
                record("s/3", response="It ships Tuesday."),
            ]
        ),
        G,
        FIELDS,
    ).to_pylist()
    by = {r["id"]: r for r in out}
    assert by["s/1"]["cluster_id"] == by["s/2"]["cluster_id"] != by["s/3"]["cluster_id"]
    assert by["s/2"]["duplicate_of"] == "s/1" and by["s/2"]["fate"] == "duplicate"
    assert by["s/1"]["duplicate_of"] is None and by["s/3"]["duplicate_of"] is None


def test_representative_is_earliest_round_then_reviewed_then_riskier() -> None:
    out = dedup.apply(
        table(
            [
                record("s/a", round=2, reviewed=True),
                record("s/b", round=1, error_category="ok"),
                record("s/c", round=1, error_category="hallucination"),
                record("s/d", round=1, reviewed=True, error_category="ok"),
            ]
        ),
        G,
        FIELDS,
    ).to_pylist()
    assert {r["id"]: r["duplicate_of"] for r in out} == {
        "s/a": "s/d",
        "s/b": "s/d",
        "s/c": "s/d",
        "s/d": None,
    }
    out = dedup.apply(
        table(
            [
                record("s/b", error_category="ok"),
                record("s/c", error_category="hallucination"),
            ]
        ),
        G,
        FIELDS,
    ).to_pylist()
    assert {r["id"]: r["duplicate_of"] for r in out} == {"s/b": "s/c", "s/c": None}


def test_conflicting_labels_queue_the_representative() -> None:
    out = dedup.apply(
        table(
            [
                record("s/1", label="correct_and_polite", label_status="agreed"),
                record("s/2", label="hallucinated_promise", label_status="agreed"),
            ]
        ),
        G,
        FIELDS,
    ).to_pylist()
    assert out[0]["queue_reasons"] == ["conflicting_duplicates"] and out[1]["queue_reasons"] is None


texts = st.lists(
    st.sampled_from(["a b", "A  b", "c", "d e f", "D E F", "g"]), min_size=1, max_size=20
)


@settings(max_examples=50, deadline=None)
@given(texts)
def test_dedup_is_idempotent_and_keeps_one_per_normalized_text(responses: list[str]) -> None:
    t = table([record(f"s/{i:03d}", response=r) for i, r in enumerate(responses)])
    once = dedup.apply(t, G, FIELDS)
    assert dedup.apply(once, G, FIELDS).equals(once)
    kept = [r for r in once.to_pylist() if r["duplicate_of"] is None]
    assert len(kept) == len({" ".join(x.casefold().split()) for x in responses})
