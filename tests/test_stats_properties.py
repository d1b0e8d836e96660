"""Property tests: random ratings against scikit-learn, statsmodels and the krippendorff package."""

from __future__ import annotations

from itertools import combinations

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from flywheel.stats import (
    Ratings,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    percent_agreement,
    scott_pi,
)
from flywheel.stats.bootstrap import replicate_values
from flywheel.stats.stat import group_sum

TOL = 1e-9
# per-test settings, not a global profile, so other test modules keep their own
PROPERTY = settings(max_examples=150, deadline=None)


@st.composite
def code_matrices(
    draw: st.DrawFn, *, min_annotators: int = 2, max_annotators: int = 5, missing: bool = True
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(n_items, n_annotators) codes, -1 = missing, and distinct non-negative numeric labels."""
    n = draw(st.integers(1, 25))
    m = draw(st.integers(min_annotators, max_annotators))
    values = draw(st.lists(st.integers(0, 20), min_size=1, max_size=5, unique=True))
    k = len(values)
    codes = draw(arrays(np.int32, (n, m), elements=st.integers(-1 if missing else 0, k - 1)))
    return codes, tuple(str(v) for v in sorted(values))


def ratings_of(codes: np.ndarray, labels: tuple[str, ...]) -> Ratings:
    return Ratings.from_codes(codes, labels=labels)


# -- against the reference implementations -----------------------------------------------------


@PROPERTY
@given(code_matrices(max_annotators=2), st.sampled_from([None, "linear", "quadratic"]))
def test_cohen_matches_sklearn(
    data: tuple[np.ndarray, tuple[str, ...]], weights: str | None
) -> None:
    codes, labels = data
    ratings = ratings_of(codes, labels)
    stat = cohen_kappa(ratings, weights=weights)
    both = (codes >= 0).all(axis=1)
    y1, y2 = codes[both, 0], codes[both, 1]
    if stat.value is None:
        # undefined exactly when nothing is shared or both used one and the same label
        assert both.sum() == 0 or len(set(y1) | set(y2)) == 1
        assert stat.undefined_reason
        return
    theirs = cohen_kappa_score(y1, y2, labels=list(range(len(labels))), weights=weights)
    assert stat.value == pytest.approx(theirs, abs=TOL)


@PROPERTY
@given(code_matrices(missing=False))
def test_fleiss_matches_statsmodels_without_missing(
    data: tuple[np.ndarray, tuple[str, ...]],
) -> None:
    codes, labels = data
    stat = fleiss_kappa(ratings_of(codes, labels))
    if stat.value is None:
        assert len(np.unique(codes)) == 1
        return
    table, _ = aggregate_raters(codes)
    assert stat.value == pytest.approx(sm_fleiss_kappa(table), abs=TOL)


@PROPERTY
@given(code_matrices(), st.sampled_from(["nominal", "ordinal", "interval", "ratio"]))
def test_alpha_matches_krippendorff_package(
    data: tuple[np.ndarray, tuple[str, ...]], level: str
) -> None:
    codes, labels = data
    stat = krippendorff_alpha(ratings_of(codes, labels), level)
    numbers = np.array([float(x) for x in labels])
    pairable = (codes >= 0).sum(axis=1) >= 2
    if stat.value is None:
        paired = codes[pairable]
        assert len(np.unique(paired[paired >= 0])) <= 1
        return
    data_t = np.where(codes >= 0, numbers[np.maximum(codes, 0)], np.nan).T  # coders x units
    theirs = krippendorff.alpha(data_t, level_of_measurement=level)
    assert stat.value == pytest.approx(theirs, abs=TOL)


def naive_gwet(codes: np.ndarray, k: int) -> tuple[float, float, float]:
    """(p_a, Fleiss p_e, AC1 p_e) straight from Gwet (2014), one item at a time."""
    agree, pairable, shares, rated = 0.0, 0, np.zeros(k), 0
    for row in codes:
        r = row[row >= 0]
        if len(r) >= 1:
            rated += 1
            shares += np.bincount(r, minlength=k) / len(r)
        if len(r) >= 2:
            pairable += 1
            n = np.bincount(r, minlength=k)
            agree += (n * (n - 1)).sum() / (len(r) * (len(r) - 1))
    pi = shares / rated
    return agree / pairable, float((pi**2).sum()), float((pi * (1 - pi)).sum() / (k - 1))


@PROPERTY
@given(code_matrices())
def test_fleiss_and_ac1_follow_gwet_with_missing(data: tuple[np.ndarray, tuple[str, ...]]) -> None:
    codes, labels = data
    ratings = ratings_of(codes, labels)
    fleiss, ac1, agreement = fleiss_kappa(ratings), gwet_ac1(ratings), percent_agreement(ratings)
    if not ((codes >= 0).sum(axis=1) >= 2).any():
        assert fleiss.value is None
        assert ac1.value is None
        assert agreement.value is None
        return
    p_a, pe_fleiss, pe_ac1 = naive_gwet(codes, len(labels)) if len(labels) > 1 else (0.0, 1.0, 0.0)
    if len(labels) > 1:
        assert agreement.value == pytest.approx(p_a, abs=TOL)
        assert ac1.value == pytest.approx((p_a - pe_ac1) / (1 - pe_ac1), abs=TOL)
    else:
        assert ac1.value is None
    if pe_fleiss == pytest.approx(1.0, abs=1e-15):
        assert fleiss.value is None
    else:
        assert fleiss.value == pytest.approx((p_a - pe_fleiss) / (1 - pe_fleiss), abs=TOL)


# -- invariants --------------------------------------------------------------------------------


@PROPERTY
@given(code_matrices(max_annotators=4), st.sampled_from([None, "linear", "quadratic"]))
def test_cohen_symmetric_and_bounded(
    data: tuple[np.ndarray, tuple[str, ...]], weights: str | None
) -> None:
    codes, labels = data
    ratings = ratings_of(codes, labels)
    for a, b in combinations(ratings.annotators, 2):
        ab = cohen_kappa(ratings, (a, b), weights=weights)
        ba = cohen_kappa(ratings, (b, a), weights=weights)
        assert (ab.value is None) == (ba.value is None)
        if ab.value is not None and ba.value is not None:
            assert ab.value == pytest.approx(ba.value, abs=1e-12)
            assert -1 - 1e-12 <= ab.value <= 1 + 1e-12
        pi = scott_pi(ratings, (a, b))
        if pi.value is not None:
            assert pi.value <= 1 + 1e-12


@PROPERTY
@given(
    code_matrices(),
    st.sampled_from(["nominal", "ordinal", "interval", "ratio"]),
    st.integers(0, 999),
)
def test_multi_rater_statistics_ignore_item_and_annotator_order(
    data: tuple[np.ndarray, tuple[str, ...]], level: str, seed: int
) -> None:
    codes, labels = data
    rng = np.random.default_rng(seed)
    shuffled = codes[rng.permutation(codes.shape[0])][:, rng.permutation(codes.shape[1])]
    one, two = ratings_of(codes, labels), ratings_of(shuffled, labels)
    pairs = [
        (krippendorff_alpha(one, level), krippendorff_alpha(two, level)),
        (fleiss_kappa(one), fleiss_kappa(two)),
        (gwet_ac1(one), gwet_ac1(two)),
        (percent_agreement(one), percent_agreement(two)),
    ]
    for a, b in pairs:
        assert a.undefined_reason == b.undefined_reason
        if a.value is not None and b.value is not None:
            assert a.value == pytest.approx(b.value, abs=1e-12)
            assert a.value <= 1 + 1e-12


def test_perfect_agreement_is_one() -> None:
    codes = np.array([[0, 0, 0], [1, 1, -1], [2, 2, 2], [0, -1, 0]])
    ratings = ratings_of(codes, ("0", "1", "2"))
    for level in ("nominal", "ordinal", "interval", "ratio"):
        assert krippendorff_alpha(ratings, level).value == pytest.approx(1.0)
    assert fleiss_kappa(ratings).value == pytest.approx(1.0)
    assert cohen_kappa(ratings, ("0", "1")).value == pytest.approx(1.0)


# -- the bootstrap kernels ---------------------------------------------------------------------


@PROPERTY
@given(code_matrices(max_annotators=3), st.integers(0, 2**32 - 1))
def test_bootstrap_replicate_equals_recomputing_the_resample(
    data: tuple[np.ndarray, tuple[str, ...]], seed: int
) -> None:
    """Replicate r of the pattern bootstrap = the statistics of the items it stands for."""
    codes, labels = data
    ratings = ratings_of(codes, labels)
    draws = replicate_values(ratings, levels=("nominal", "ordinal"), replicates=3, seed=seed)
    patterns = ratings.patterns
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(ratings.n_items, patterns.freq / ratings.n_items, size=3)
    for r in range(3):
        resample = ratings_of(np.repeat(patterns.rows, weights[r], axis=0), labels)
        expected = {
            "fleiss_kappa": fleiss_kappa(resample),
            "krippendorff_alpha.nominal": krippendorff_alpha(resample, "nominal"),
            "krippendorff_alpha.ordinal": krippendorff_alpha(resample, "ordinal"),
        }
        if ratings.n_annotators == 2:
            expected["cohen_kappa"] = cohen_kappa(resample)
        assert set(draws) == set(expected)
        for key, stat in expected.items():
            got = draws[key][r]
            if stat.value is None:
                assert np.isnan(got)
            else:
                assert got == pytest.approx(stat.value, abs=TOL)


@PROPERTY
@given(
    arrays(np.int64, st.integers(0, 30), elements=st.integers(-1, 6)),
    st.integers(1, 4),
)
def test_group_sum_matches_bincount(index: np.ndarray, batch: int) -> None:
    rng = np.random.default_rng(index.size)
    weights = rng.random((batch, index.size))
    got = group_sum(weights, index, 7)
    for b in range(batch):
        keep = index >= 0
        want = np.bincount(index[keep], weights=weights[b, keep], minlength=7)
        np.testing.assert_allclose(got[b], want, atol=1e-12)
