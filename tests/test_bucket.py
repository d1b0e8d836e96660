from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel import bucket, guidelines, params
from flywheel.errors import ConfigError
from records_factory import record, table


def categorize(label: str | None, response: str) -> tuple[str, str]:
    g = guidelines.load()
    rules = bucket.detectors(params.load()["bucket"], g)
    row: dict[str, Any] = {"label": label, "response": response, "prompt": "p"}
    return bucket.categorize(row, g, rules)


def test_label_mapping_wins() -> None:
    assert categorize("hallucinated_promise", "Fine.") == ("hallucination", "label")


def test_detectors_for_unlabeled_records() -> None:
    assert categorize(None, "Your refund is guaranteed by tomorrow.") == (
        "hallucination",
        "detector",
    )
    assert categorize(None, "Hi {customer_name}, your order shipped.") == (
        "format_error",
        "detector",
    )


def test_uncategorized_when_nothing_matches() -> None:
    assert categorize(None, "Your parcel left the depot on Monday.") == ("uncategorized", "none")


def test_unknown_detector_category_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"bucket.detectors\[0\] names category 'nope'"):
        bucket.detectors({"detectors": [{"category": "nope", "pattern": "x"}]}, guidelines.load())


def test_bad_detector_regex_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"bucket.detectors\[0\].pattern is not a valid regular expression"
    ):
        bucket.detectors({"detectors": [{"category": "tone", "pattern": "("}]}, guidelines.load())


WORDS = [
    "refund",
    "guaranteed",
    "instantly",
    "{order_id}",
    "I can't help with that",
    "cvv",
    "ok",
    "Ünïcode",
    "100%",
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from(["over_refusal", "unusable"])),
            st.lists(st.sampled_from(WORDS), max_size=6),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_table_rule_matches_the_one_record_rule(rows: list[tuple[str | None, list[str]]]) -> None:
    g = guidelines.load()
    rules = bucket.detectors(params.load()["bucket"], g)
    recs = [
        record(f"s/{i}", response=" ".join(words) or "x", label=lab)
        for i, (lab, words) in enumerate(rows)
    ]
    got = {r["id"]: r for r in bucket.apply(table(recs), g, rules).to_pylist()}
    for rec in recs:
        out = got[rec["id"]]
        assert (out["error_category"], out["category_source"]) == bucket.categorize(rec, g, rules)
