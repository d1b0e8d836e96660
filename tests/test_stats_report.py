"""summarize / AgreementReport: contents, undefined values, determinism, breakdowns."""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from flywheel.stats import (
    Ratings,
    confused_pairs,
    fleiss_kappa,
    krippendorff_alpha,
    summarize,
)

LESSON = Ratings.from_wide(
    ["1", "2", "3", "4", "5"],
    {"a": ["good", "bad", "bad", "good", "good"], "b": ["good", "bad", "good", "good", "bad"]},
)
REQUIRED = {
    "items", "annotators", "percent_agreement", "cohen_kappa", "pairs", "scott_pi", "fleiss_kappa",
    "krippendorff_alpha", "gwet_ac1", "per_label", "per_annotator", "prevalence", "confusion",
    "confidence_intervals", "disagreements", "repeats", "left_out_items",
}  # fmt: skip


def walk(obj: Any) -> list[Any]:
    """Every leaf of a nested dict/list."""
    if isinstance(obj, dict):
        return [leaf for v in obj.values() for leaf in walk(v)]
    if isinstance(obj, list):
        return [leaf for v in obj for leaf in walk(v)]
    return [obj]


def test_report_has_every_key_and_is_plain_json() -> None:
    out = summarize(LESSON, bootstrap=50).to_dict()
    assert out.keys() >= REQUIRED
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert all(isinstance(x, str | int | float | bool | type(None)) for x in walk(out))
    assert out["items"] == 5
    assert out["annotators"] == ["a", "b"]
    assert out["prevalence"] == {"bad": 0.4, "good": 0.6}
    assert out["confusion"]["matrix"] == [[1, 1], [1, 2]]


def test_rounding_happens_only_in_to_dict() -> None:
    report = summarize(LESSON, bootstrap=0)
    assert report.cohen_kappa.value == pytest.approx(1 / 6, abs=1e-15)
    assert report.cohen_kappa.value != 0.166667
    assert report.to_dict()["cohen_kappa"]["value"] == 0.166667
    assert report.to_dict(digits=3)["cohen_kappa"]["value"] == 0.167


def test_same_seed_same_dict_and_bootstrap_zero_disables() -> None:
    rng = np.random.default_rng(1)
    ratings = Ratings.from_codes(rng.integers(-1, 3, size=(200, 3)), labels=("x", "y", "z"))
    one = json.dumps(summarize(ratings, seed=7, bootstrap=300).to_dict(), sort_keys=True)
    two = json.dumps(summarize(ratings, seed=7, bootstrap=300).to_dict(), sort_keys=True)
    other = json.dumps(summarize(ratings, seed=8, bootstrap=300).to_dict(), sort_keys=True)
    assert one == two != other
    assert summarize(ratings, bootstrap=0).confidence_intervals == {}


def test_intervals_bracket_the_estimate() -> None:
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 3, size=500)
    noisy = np.where(rng.random((500, 2)) < 0.8, truth[:, None], rng.integers(0, 3, size=(500, 2)))
    report = summarize(Ratings.from_codes(noisy, labels=("a", "b", "c")), bootstrap=400, seed=3)
    assert set(report.confidence_intervals) == {
        "cohen_kappa",
        "fleiss_kappa",
        "krippendorff_alpha.nominal",
    }
    kappa = report.cohen_kappa.value
    ci = report.confidence_intervals["cohen_kappa"]
    assert kappa is not None
    assert ci.low is not None
    assert ci.high is not None
    assert ci.low < kappa < ci.high
    assert ci.high - ci.low < 0.2
    assert (
        report.to_dict()["confidence_intervals"]["krippendorff_alpha"]["nominal"]["replicates"]
        == 400
    )


def test_one_label_everywhere_is_undefined_not_zero_or_one() -> None:
    ratings = Ratings.from_wide(["1", "2", "3"], {"a": ["ok"] * 3, "b": ["ok"] * 3})
    report = summarize(ratings, bootstrap=20)
    for stat in (
        report.cohen_kappa,
        report.scott_pi,
        report.fleiss_kappa,
        report.krippendorff_alpha["nominal"],
    ):
        assert stat.value is None
        assert stat.undefined_reason is not None
        assert "'ok'" in stat.undefined_reason
        assert "0/0" in stat.undefined_reason
    assert report.percent_agreement.value == 1.0  # agreement itself is perfectly defined
    assert report.confidence_intervals["cohen_kappa"].low is None
    out = report.to_dict()
    assert out["cohen_kappa"]["value"] is None
    assert "0/0" in out["cohen_kappa"]["undefined_reason"]
    json.dumps(out, allow_nan=False)


def test_single_annotator_is_undefined() -> None:
    report = summarize(Ratings.from_wide(["1", "2"], {"solo": ["x", "y"]}), bootstrap=10)
    for stat in (
        report.percent_agreement,
        report.cohen_kappa,
        report.fleiss_kappa,
        report.gwet_ac1,
    ):
        assert stat.value is None
        assert (
            stat.undefined_reason
            == "there is only one annotator ('solo'); agreement needs at least two."
        )
    assert report.pairs == ()
    assert report.left_out_items == 2


def test_no_pairable_items_says_how_many_were_left_out() -> None:
    ratings = Ratings.from_long(["1", "2", "3"], ["a", "b", "a"], ["x", "y", "y"])
    report = summarize(ratings, bootstrap=0)
    assert report.left_out_items == 3
    assert report.krippendorff_alpha["nominal"].undefined_reason == (
        "no item has ratings from two or more annotators, so no two ratings can be compared."
    )
    assert (
        report.pairs[0].cohen_kappa.undefined_reason
        == "annotators 'a' and 'b' rated no item in common."
    )


def test_more_than_two_annotators() -> None:
    rng = np.random.default_rng(4)
    ratings = Ratings.from_codes(rng.integers(-1, 4, size=(60, 4)), labels=("1", "2", "3", "4"))
    report = summarize(ratings, level="ordinal", bootstrap=0)
    assert report.cohen_kappa.value is None
    assert "exactly two annotators and there are 4" in str(report.cohen_kappa.undefined_reason)
    assert [p.annotators for p in report.pairs] == list(combinations(ratings.annotators, 2))
    out = report.to_dict()
    assert set(out["krippendorff_alpha"]) == {"nominal", "ordinal"}
    assert {"cohen_kappa_linear", "cohen_kappa_quadratic"} <= set(out["pairs"][0])
    for pair in report.pairs:
        both = (ratings.codes[:, ratings.annotators.index(pair.annotators[0])] >= 0) & (
            ratings.codes[:, ratings.annotators.index(pair.annotators[1])] >= 0
        )
        assert pair.n == int(both.sum())
    defined = [p.cohen_kappa.value for p in report.pairs if p.cohen_kappa.value is not None]
    assert report.mean_pairwise_kappa.value == pytest.approx(np.mean(defined))


def test_weights_and_level_options() -> None:
    assert summarize(LESSON, bootstrap=0).weights == ()
    assert summarize(LESSON, weights="linear", bootstrap=0).pairs[0].weighted.keys() == {"linear"}
    report = summarize(LESSON, level="interval", bootstrap=0)
    assert report.weights == ("linear", "quadratic")
    assert report.cohen_kappa_weighted.keys() == {"linear", "quadratic"}
    with pytest.raises(ValueError, match="level must be one of nominal, ordinal, interval, ratio"):
        summarize(LESSON, level="fuzzy")
    with pytest.raises(ValueError, match="weights must be None, 'linear' or 'quadratic'"):
        summarize(LESSON, weights="cubic")
    with pytest.raises(ValueError, match="bootstrap must be 0"):
        summarize(LESSON, bootstrap=-1)


def test_kappa_paradox_is_visible() -> None:
    # 100 items, both say "ok" on 90, each says "bad" alone on 5: 90% agreement, kappa below 0
    a = ["ok"] * 90 + ["bad"] * 5 + ["ok"] * 5
    b = ["ok"] * 90 + ["ok"] * 5 + ["bad"] * 5
    report = summarize(
        Ratings.from_wide([str(i) for i in range(100)], {"a": a, "b": b}), bootstrap=0
    )
    assert report.percent_agreement.value == pytest.approx(0.9)
    assert report.cohen_kappa.value is not None
    assert report.cohen_kappa.value < 0
    assert report.prevalence["ok"] == pytest.approx(0.95)
    assert report.cohen_kappa.expected == pytest.approx(0.905)
    assert report.gwet_ac1.value is not None
    assert report.gwet_ac1.value > 0.8


def test_per_annotator_against_a_reference() -> None:
    ratings = Ratings.from_wide(
        ["1", "2", "3", "4"], {"good": ["x", "y", "x", "y"], "drifts": ["y", "y", "y", None]}
    )
    reference = ["x", "y", "x", "y"]
    report = summarize(ratings, reference=reference, bootstrap=0)
    good, drifts = report.per_annotator
    assert good.vs_reference is not None
    assert drifts.vs_reference is not None
    assert good.vs_reference.cohen_kappa.value == pytest.approx(1.0)
    assert drifts.vs_reference.n == 3
    assert drifts.vs_reference.percent_agreement.value == pytest.approx(1 / 3)
    assert drifts.label_shares == {"x": 0.0, "y": 1.0}
    as_mapping = summarize(
        ratings, reference=dict(zip(ratings.items, reference, strict=True)), bootstrap=0
    )
    assert as_mapping.to_dict()["per_annotator"] == report.to_dict()["per_annotator"]
    assert summarize(ratings, bootstrap=0).per_annotator[0].vs_reference is None
    with pytest.raises(ValueError, match=r"Reference labels \['z'\] are not among the labels"):
        summarize(ratings, reference=["x", "y", "z", "x"], bootstrap=0)
    with pytest.raises(ValueError, match="The reference has 2 labels for 4 items"):
        summarize(ratings, reference=["x", "y"], bootstrap=0)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.int32, st.tuples(st.integers(1, 20), st.integers(2, 4)), elements=st.integers(-1, 3))
)
def test_per_label_is_the_binarised_statistic(codes: np.ndarray) -> None:
    labels = ("p", "q", "r", "s")
    ratings = Ratings.from_codes(codes, labels=labels)
    report = summarize(ratings, bootstrap=0)
    for j, lab in enumerate(report.per_label):
        binary = Ratings.from_codes(
            np.where(codes >= 0, (codes == j).astype(int), -1), labels=("rest", "it")
        )
        for got, want in (
            (lab.kappa, fleiss_kappa(binary)),
            (lab.alpha, krippendorff_alpha(binary)),
        ):
            assert (got.value is None) == (want.value is None)
            if got.value is not None:
                assert got.value == pytest.approx(want.value, abs=1e-9)
        assert lab.ratings == int((codes == j).sum())
        pairable = (codes >= 0).sum(axis=1) >= 2
        x = (codes[pairable] == j).sum(axis=1)
        r = (codes[pairable] >= 0).sum(axis=1)
        if (x * (r - 1)).sum():
            assert lab.specific_agreement.value == pytest.approx(
                (x * (x - 1)).sum() / (x * (r - 1)).sum()
            )
        else:
            assert lab.specific_agreement.value is None


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.int32, st.tuples(st.integers(1, 20), st.integers(2, 4)), elements=st.integers(-1, 3))
)
def test_confusion_and_disagreements_count_rating_pairs(codes: np.ndarray) -> None:
    ratings = Ratings.from_codes(codes, labels=("p", "q", "r", "s"))
    report = summarize(ratings, bootstrap=0, top=100)
    matrix = np.array(report.confusion.matrix)
    r = (codes >= 0).sum(axis=1)
    assert matrix.sum() == int((r * (r - 1) // 2).sum())  # every rating pair once
    naive: dict[tuple[int, int], int] = {}
    for row in codes:
        for x, y in combinations(row[row >= 0].tolist(), 2):
            if x != y:
                key = (min(x, y), max(x, y))
                naive[key] = naive.get(key, 0) + 1
    got = {
        (ratings.labels.index(d.labels[0]), ratings.labels.index(d.labels[1])): d.count
        for d in report.disagreements
    }
    assert got == naive
    counts = [d.count for d in report.disagreements]
    assert counts == sorted(counts, reverse=True)
    for d in report.disagreements:
        c, k = (ratings.labels.index(x) for x in d.labels)
        holders = [ratings.items[i] for i, row in enumerate(codes) if c in row and k in row]
        assert d.examples == tuple(holders[:5])
        assert d.items == len(holders)


def test_disagreements_know_the_guideline_boundary_examples() -> None:
    ratings = Ratings.from_wide(
        [str(i) for i in range(8)],
        {"a": list("xxyyzzxx"), "b": list("yyzzxxyy")},
    )
    boundary = {frozenset({"x", "y"}): ["why x not y"], ("z", "y"): [], ("x", "w"): ["unused"]}
    pairs = confused_pairs(ratings, boundary_pairs=boundary, top=2, examples=3)
    assert [p.labels for p in pairs] == [("x", "y"), ("x", "z")]
    assert pairs[0].count == 4
    assert pairs[0].examples == ("0", "1", "6")
    assert pairs[0].has_boundary_example is True
    assert pairs[0].guideline_examples == 1
    assert pairs[1].has_boundary_example is False
    assert confused_pairs(ratings)[0].has_boundary_example is None
    with pytest.raises(ValueError, match="A boundary pair key must hold two different labels"):
        confused_pairs(ratings, boundary_pairs={("x", "x"): []})


@pytest.mark.parametrize(
    ("codes", "labels", "reason"),
    [
        (np.zeros((0, 2)), (), "no item has ratings from two or more annotators"),
        (np.full((3, 2), -1), (), "no item has ratings from two or more annotators"),
        (np.zeros((3, 0)), ("a",), "there are no annotators."),
    ],
)
def test_degenerate_inputs_report_reasons(
    codes: np.ndarray, labels: tuple[str, ...], reason: str
) -> None:
    report = summarize(Ratings.from_codes(codes, labels=labels), level="ratio", bootstrap=10)
    out = report.to_dict()
    json.dumps(out, allow_nan=False)
    for key in ("percent_agreement", "fleiss_kappa", "gwet_ac1"):
        assert out[key]["value"] is None
        assert reason in out[key]["undefined_reason"]
    assert out["krippendorff_alpha"]["ratio"]["value"] is None
    assert out["left_out_items"] == codes.shape[0]


def test_ratio_level_needs_non_negative_values() -> None:
    ratings = Ratings.from_codes([[0, 1], [1, 1]], labels=("-1", "2"))
    stat = summarize(ratings, level="ratio", bootstrap=0).krippendorff_alpha["ratio"]
    assert (
        stat.undefined_reason
        == "the ratio level needs non-negative label values, and label '-1' is negative."
    )
