"""ConvAbuse (CC BY 4.0, see tests/data/convabuse/SOURCE.txt): real ratings with repeats."""

from __future__ import annotations

import csv
from pathlib import Path

import krippendorff
import numpy as np
import pytest

from flywheel import agree
from flywheel.stats import Ratings, krippendorff_alpha, summarize

CSV = Path(__file__).parent / "data" / "convabuse" / "convabuse_severity.csv"


@pytest.fixture(scope="module")
def ratings() -> Ratings:
    return agree.load_ratings(CSV, item="item", annotator="annotator", label="severity")


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, str, str]]:
    with CSV.open(newline="") as f:
        return [(r["item"], r["annotator"], r["severity"]) for r in csv.DictReader(f)]


def test_shape_labels_and_repeats(ratings: Ratings, rows: list[tuple[str, str, str]]) -> None:
    cells = {(item, ann) for item, ann, _ in rows}
    assert ratings.n_items == len({item for item, _, _ in rows})
    assert ratings.annotators == tuple(sorted({ann for _, ann, _ in rows}))
    assert ratings.labels == ("-3", "-2", "-1", "0", "1")  # numeric order, so ordinal works
    assert ratings.repeats == len(rows) - len(cells) > 0
    assert int((ratings.codes >= 0).sum()) == len(cells)
    report = summarize(ratings, bootstrap=0)
    assert report.repeats == ratings.repeats
    assert report.to_dict()["repeats"] == len(rows) - len(cells)


def test_last_rating_counts(ratings: Ratings, rows: list[tuple[str, str, str]]) -> None:
    last = {(item, ann): label for item, ann, label in rows}
    item_pos = {name: i for i, name in enumerate(ratings.items)}
    ann_pos = {name: j for j, name in enumerate(ratings.annotators)}
    for (item, ann), label in last.items():
        assert ratings.labels[ratings.codes[item_pos[item], ann_pos[ann]]] == label


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_alpha_matches_krippendorff_package(ratings: Ratings, level: str) -> None:
    values = np.array([float(x) for x in ratings.labels])
    data = np.where(ratings.codes >= 0, values[np.maximum(ratings.codes, 0)], np.nan).T
    theirs = krippendorff.alpha(data, level_of_measurement=level)
    ours = krippendorff_alpha(ratings, level).value
    assert ours is not None
    assert ours == pytest.approx(theirs, abs=1e-9)
