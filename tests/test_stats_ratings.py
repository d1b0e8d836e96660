"""The Ratings input model: constructors, label order, repeats, validation."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.stats import MISSING, Ratings, default_label_order


def test_from_long_builds_the_matrix() -> None:
    ratings = Ratings.from_long(
        items=["x", "y", "x", "z", "y"],
        annotators=["bo", "bo", "al", "al", "al"],
        labels=["good", "bad", "bad", "good", None],
    )
    assert ratings.items == ("x", "y", "z")  # first appearance
    assert ratings.annotators == ("al", "bo")  # sorted
    assert ratings.labels == ("bad", "good")
    assert ratings.codes.tolist() == [[0, 1], [MISSING, 0], [1, MISSING]]
    assert ratings.codes.dtype == np.int32
    assert ratings.repeats == 0


def test_from_long_last_occurrence_counts_and_repeats_are_reported() -> None:
    ratings = Ratings.from_long(
        items=["i1", "i1", "i2", "i1", "i2"],
        annotators=["a", "b", "a", "a", "a"],
        labels=["x", "x", "y", "y", "y"],
    )
    # a rated i1 twice (x then y) and i2 twice (y then y): two rows dropped, one changed its mind
    assert ratings.codes.tolist() == [[1, 0], [1, MISSING]]
    assert ratings.repeats == 2
    assert ratings.repeat_conflicts == 1


def test_missing_label_rows_are_not_ratings_and_do_not_override() -> None:
    ratings = Ratings.from_long(["i", "i", "j"], ["a", "a", "a"], ["x", "", None])
    assert ratings.items == ("i", "j")
    assert ratings.codes.tolist() == [[0], [MISSING]]
    assert ratings.repeats == 0


def test_from_long_accepts_pyarrow_and_numpy_columns() -> None:
    items = pa.chunked_array([["1", "2"], ["3"]])
    annotators = np.array(["a", "a", "b"], dtype=object)
    labels = pa.array([3, -1, 3])
    ratings = Ratings.from_long(items, annotators, labels)
    assert ratings.labels == ("-1", "3")
    assert ratings.codes.tolist() == [[1, MISSING], [0, MISSING], [MISSING, 1]]


def test_numeric_labels_sort_as_numbers() -> None:
    assert default_label_order(["1", "-3", "10", "0", "-2", "2"]) == (
        "-3",
        "-2",
        "0",
        "1",
        "2",
        "10",
    )
    assert default_label_order(["b", "10", "a", "9"]) == ("10", "9", "a", "b")
    assert default_label_order(["nan", "1"]) == ("1", "nan")  # nan is not a number to sort by


def test_label_order_is_kept_and_checked() -> None:
    ratings = Ratings.from_long(
        ["i", "j"], ["a", "a"], ["low", "high"], label_order=["low", "mid", "high"]
    )
    assert ratings.labels == ("low", "mid", "high")
    assert ratings.codes.tolist() == [[0], [2]]
    with pytest.raises(ValueError, match=r"Labels \['high'\] are not in label_order \['low'\]"):
        Ratings.from_long(["i", "j"], ["a", "a"], ["low", "high"], label_order=["low"])
    with pytest.raises(ValueError, match="label_order repeats a label"):
        Ratings.from_long(["i"], ["a"], ["low"], label_order=["low", "low"])


def test_from_wide_keeps_column_order_and_treats_empty_as_missing() -> None:
    ratings = Ratings.from_wide(["1", "2", "3"], {"zed": ["a", None, "b"], "amy": ["", "b", "b"]})
    assert ratings.annotators == ("zed", "amy")
    assert ratings.items == ("1", "2", "3")
    assert ratings.codes.tolist() == [[0, MISSING], [MISSING, 1], [1, 1]]


def test_from_wide_keeps_items_nobody_rated() -> None:
    ratings = Ratings.from_wide(["1", "2"], {"a": ["x", None], "b": [None, None]})
    assert ratings.items == ("1", "2")
    assert ratings.codes.tolist() == [[0, MISSING], [MISSING, MISSING]]


def test_from_wide_repeated_item_is_a_repeat() -> None:
    ratings = Ratings.from_wide(["1", "2", "1"], {"a": ["x", "y", "y"], "b": ["x", None, None]})
    assert ratings.items == ("1", "2")
    assert ratings.codes.tolist() == [[1, 0], [1, MISSING]]
    assert ratings.repeats == 1
    assert ratings.repeat_conflicts == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codes": np.zeros(3), "labels": ("a",)}, "2-D"),
        ({"codes": np.zeros((2, 2)), "labels": ("a",), "annotators": ("x",)}, "one name per row"),
        ({"codes": np.full((1, 2), 2), "labels": ("a", "b")}, r"codes must lie in -1\.\.1"),
        ({"codes": np.zeros((1, 1)), "labels": ("a", "a")}, "label names must be unique"),
        (
            {"codes": np.zeros((2, 1)), "labels": ("a",), "items": ("i", "i")},
            "item ids must be unique",
        ),
    ],
)
def test_from_codes_validates(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Ratings.from_codes(**kwargs)  # type: ignore[arg-type]


def test_from_long_rejects_ragged_and_null_ids() -> None:
    with pytest.raises(ValueError, match="equally long"):
        Ratings.from_long(["i"], ["a", "b"], ["x"])
    with pytest.raises(ValueError, match="Row 1 has no annotator"):
        Ratings.from_long(["i", "j"], ["a", None], ["x", "y"])


def test_codes_are_read_only() -> None:
    ratings = Ratings.from_codes(np.zeros((2, 2), dtype=np.int64), labels=("a",))
    with pytest.raises(ValueError, match="read-only"):
        ratings.codes[0, 0] = 0


def test_values_are_numbers_or_positions() -> None:
    assert Ratings.from_codes(np.zeros((1, 1)), labels=("-3", "0.5")).values.tolist() == [-3.0, 0.5]
    assert Ratings.from_codes(np.zeros((1, 1)), labels=("low", "high")).values.tolist() == [
        0.0,
        1.0,
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("abcdef"), st.sampled_from("pqr"), st.sampled_from(["1", "2", "-1"])
        ),
        min_size=1,
        max_size=40,
    )
)
def test_from_long_accounts_for_every_row(rows: list[tuple[str, str, str]]) -> None:
    """Every rating row is either in the matrix (the last per cell) or counted as a repeat."""
    items, annotators, labels = zip(*rows, strict=True)
    ratings = Ratings.from_long(list(items), list(annotators), list(labels))
    last = {(i, a): lab for i, a, lab in rows}
    assert int((ratings.codes >= 0).sum()) + ratings.repeats == len(rows)
    for (i, a), lab in last.items():
        code = ratings.codes[ratings.items.index(i), ratings.annotators.index(a)]
        assert ratings.labels[code] == lab
    conflicts = sum(
        1
        for n, (i, a, lab) in enumerate(rows)
        if any((j, b) == (i, a) for j, b, _ in rows[n + 1 :]) and lab != last[(i, a)]
    )
    assert ratings.repeat_conflicts == conflicts


def test_patterns_fold_identical_rows() -> None:
    codes = np.array([[0, 1], [0, 1], [-1, 1], [0, 1]])
    patterns = Ratings.from_codes(codes, labels=("a", "b")).patterns
    assert sorted(patterns.freq.tolist()) == [1, 3]
    assert (patterns.rows[patterns.inverse] == codes).all()
    assert patterns.counts[patterns.inverse].tolist() == [[1, 1], [1, 1], [0, 1], [1, 1]]


def test_patterns_of_wide_rows_fall_back_to_unique() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(-1, 30, size=(50, 20))  # 31**20 row codes do not fit in int64
    patterns = Ratings.from_codes(codes, labels=[str(i) for i in range(30)]).patterns
    assert (patterns.rows[patterns.inverse] == codes).all()
    assert patterns.freq.sum() == 50


def test_mixed_python_values_become_text() -> None:
    ratings = Ratings.from_long([1, 2, "x"], ["a", "b", "a"], [1, "y", None])
    assert ratings.items == ("1", "2", "x")
    assert ratings.labels == ("1", "y")


def test_degenerate_shapes_build() -> None:
    for codes, labels in (
        (np.zeros((0, 2)), ()),
        (np.full((3, 2), -1), ()),
        (np.zeros((3, 0)), ("a",)),
    ):
        ratings = Ratings.from_codes(codes, labels=labels)
        assert ratings.patterns.freq.sum() == ratings.n_items
