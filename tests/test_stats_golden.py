"""Published reference values (REFERENCE_VALUES.md), each rebuilt from its table as ratings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import krippendorff
import numpy as np
import pytest

from flywheel import agree
from flywheel.stats import (
    Ratings,
    Stat,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
    scott_pi,
    summarize,
)

DATA = Path(__file__).parent / "data"


def value(stat: Stat) -> float:
    assert stat.value is not None, stat.undefined_reason
    return stat.value


def from_table(table: Sequence[Sequence[int]]) -> Ratings:
    """Two annotators from a contingency table: table[i][j] items where a said i and b said j."""
    t = np.asarray(table)
    k = t.shape[0]
    a = np.repeat(np.repeat(np.arange(k), k), t.ravel())
    b = np.repeat(np.tile(np.arange(k), k), t.ravel())
    return Ratings.from_codes(
        np.column_stack([a, b]), labels=[f"c{i}" for i in range(k)], annotators=["a", "b"]
    )


def from_counts(counts: Sequence[Sequence[int]]) -> Ratings:
    """Items from a Fleiss count matrix: counts[i][c] raters put item i in category c."""
    rows = [np.repeat(np.arange(len(row)), row) for row in counts]
    width = max(len(r) for r in rows)
    codes = np.full((len(rows), width), -1)
    for i, r in enumerate(rows):
        codes[i, : len(r)] = r
    return Ratings.from_codes(codes, labels=[f"c{i}" for i in range(len(counts[0]))])


def from_sequences(*coders: Sequence[int]) -> Ratings:
    k = int(max(max(c) for c in coders)) + 1
    return Ratings.from_codes(np.column_stack(coders), labels=[str(i) for i in range(k)])


def from_rows(*rows: str) -> Ratings:
    """Coders as whitespace-separated rows of labels, "." for a missing rating."""
    split = [row.split() for row in rows]
    items = [str(i) for i in range(len(split[0]))]
    columns = {f"coder{j}": [None if x == "." else x for x in row] for j, row in enumerate(split)}
    return Ratings.from_wide(items, columns)


# -- the lesson --------------------------------------------------------------------------------


def test_lesson_agreement_and_kappa() -> None:
    ratings = agree.load_ratings(DATA / "lesson.jsonl")
    assert value(percent_agreement(ratings)) == pytest.approx(0.6, abs=1e-12)
    assert value(cohen_kappa(ratings)) == pytest.approx(1 / 6, abs=1e-12)
    text = agree.format_text(summarize(ratings, bootstrap=0))
    assert text.splitlines()[:2] == ["agreement = 0.6", "kappa = 0.167"]


# -- Cohen's kappa -----------------------------------------------------------------------------


def test_cohen_wikipedia_2x2() -> None:
    assert value(cohen_kappa(from_table([[20, 5], [10, 15]]))) == pytest.approx(0.4, abs=1e-12)


def test_cohen_1960() -> None:
    stat = cohen_kappa(from_table([[88, 14, 18], [10, 40, 10], [2, 6, 12]]))
    assert value(stat) == pytest.approx(29 / 59, abs=1e-12)
    assert stat.observed == pytest.approx(0.70, abs=1e-12)
    assert stat.expected == pytest.approx(0.41, abs=1e-12)


def test_cohen_artstein_poesio_binary() -> None:
    y1 = [0] * 40 + [1] * 60
    y2 = [0] * 20 + [1] * 20 + [0] * 10 + [1] * 50
    assert value(cohen_kappa(from_sequences(y1, y2))) == pytest.approx(0.347826, abs=5e-7)


def test_cohen_artstein_poesio_three_labels() -> None:
    y1 = [0] * 46 + [1] * 44 + [2] * 10
    assert value(cohen_kappa(from_sequences(y1, [0] * 52 + [1] * 32 + [2] * 16))) == pytest.approx(
        0.8013, abs=5e-5
    )
    ratings = from_sequences(y1, [0] * 50 + [1] * 40 + [2] * 10)
    assert value(cohen_kappa(ratings)) == pytest.approx(0.9315, abs=5e-5)
    assert value(cohen_kappa(ratings, weights="linear")) == pytest.approx(0.9412, abs=5e-5)
    assert value(cohen_kappa(ratings, weights="quadratic")) == pytest.approx(0.9541, abs=5e-5)


def test_cohen_sas_with_standard_error() -> None:
    ratings = from_table([[0, 4, 1], [0, 8, 0], [0, 1, 5]])
    stat = cohen_kappa(ratings)
    kappa, se = value(stat), stat.se
    assert se is not None
    assert kappa == pytest.approx(0.4842, abs=5e-5)
    assert se == pytest.approx(0.1380, abs=5e-5)
    assert kappa - 1.959964 * se == pytest.approx(0.2137, abs=5e-5)
    assert kappa + 1.959964 * se == pytest.approx(0.7547, abs=5e-5)
    assert value(cohen_kappa(ratings, weights="linear")) == pytest.approx(0.4701, abs=5e-5)


# -- Fleiss' kappa -----------------------------------------------------------------------------

WIKIPEDIA_FLEISS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]

# Fleiss (1971) psychiatric diagnoses, 30 patients x 6 raters, categories 1..5; copied from
# statsmodels/stats/tests/test_inter_rater.py (statsmodels, BSD-3-Clause licence).
DIAGNOSES = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip


def test_fleiss_wikipedia() -> None:
    stat = fleiss_kappa(from_counts(WIKIPEDIA_FLEISS))
    assert value(stat) == pytest.approx(0.209931, abs=5e-7)
    assert stat.observed == pytest.approx(0.378, abs=5e-4)
    assert stat.expected == pytest.approx(0.213, abs=5e-4)


def test_fleiss_1971_diagnoses() -> None:
    ratings = Ratings.from_codes(np.asarray(DIAGNOSES) - 1, labels=["1", "2", "3", "4", "5"])
    assert value(fleiss_kappa(ratings)) == pytest.approx(0.4302445, abs=5e-8)


# -- Krippendorff's alpha ----------------------------------------------------------------------


def test_krippendorff_2011_binary() -> None:
    ratings = from_rows("0 1 0 0 0 0 0 0 1 0", "1 1 1 0 0 1 0 0 0 0")
    assert value(krippendorff_alpha(ratings)) == pytest.approx(2 / 21, abs=1e-12)
    assert value(cohen_kappa(ratings)) == pytest.approx(0.0909, abs=5e-5)
    assert value(scott_pi(ratings)) == pytest.approx(0.0476, abs=5e-5)
    assert value(percent_agreement(ratings)) == pytest.approx(0.6, abs=1e-12)


def test_krippendorff_2011_nominal_letters() -> None:
    ratings = from_rows("a a b b d c c c e d d a", "b a b b b c c c e d d d")
    assert value(krippendorff_alpha(ratings)) == pytest.approx(155 / 224, abs=1e-12)


K2011_MISSING = (
    "1 2 3 3 2 1 4 1 2 . . .",
    "1 2 3 3 2 2 4 1 2 5 . 3",
    ". 3 3 3 2 3 4 2 2 5 1 .",
    "1 2 3 3 2 4 4 1 2 5 1 .",
)


def reliability_data(rows: Sequence[str]) -> np.ndarray:
    return np.array([[np.nan if x == "." else float(x) for x in row.split()] for row in rows])


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_2011_missing_data(level: str, published: float) -> None:
    ratings = from_rows(*K2011_MISSING)
    ours = value(krippendorff_alpha(ratings, level))
    assert ours == pytest.approx(published, abs=5e-4)
    theirs = krippendorff.alpha(reliability_data(K2011_MISSING), level_of_measurement=level)
    assert ours == pytest.approx(theirs, abs=1e-9)


WIKIPEDIA_3_CODERS = (
    ". . . . . 3 4 1 2 1 1 3 3 . 3",
    "1 . 2 1 3 3 4 3 . . . . . . .",
    ". . 2 1 3 4 4 . 2 1 1 3 3 . 4",
)


@pytest.mark.parametrize(("level", "published"), [("nominal", 0.691358), ("interval", 0.810845)])
def test_krippendorff_wikipedia_three_coders(level: str, published: float) -> None:
    ratings = from_rows(*WIKIPEDIA_3_CODERS)
    assert value(krippendorff_alpha(ratings, level)) == pytest.approx(published, abs=5e-7)


def test_wikipedia_three_coders_leaves_out_single_ratings() -> None:
    report = summarize(from_rows(*WIKIPEDIA_3_CODERS), bootstrap=0)
    # units 1 (one rating), 2 and 14 (none) carry nothing pairable
    assert report.left_out_items == 3
    assert report.to_dict()["left_out_items"] == 3
