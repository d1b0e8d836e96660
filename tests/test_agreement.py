"""The agreement stage: statistics from the records, gates, plots, and the text report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import manifest, row, write_export
from flywheel import agreement, guidelines, pipeline
from flywheel.errors import GateError

LABELLED = pipeline.LAYERS["agreement"]


def build(repo: Path, rows: list[dict[str, object]]) -> None:
    write_export(repo, manifest("td-1"), rows)
    for stage in ("ingest", "label"):
        pipeline.run_stage(stage)


def test_lesson_shaped_records_give_the_published_kappa(repo: Path) -> None:
    pairs = [
        ("correct_and_polite",) * 2,
        ("over_refusal",) * 2,
        ("over_refusal", "correct_and_polite"),
        ("correct_and_polite",) * 2,
        ("correct_and_polite", "over_refusal"),
    ]
    build(repo, [row(i, a, b) for i, (a, b) in enumerate(pairs)])
    params = {"min_percent_agreement": None, "min_kappa": None, "bootstrap": 0}
    metrics = agreement.run(LABELLED, guidelines.load(), params)
    assert metrics["items"] == 5 and metrics["annotators"] == 2
    assert metrics["percent_agreement"] == pytest.approx(0.6)
    assert metrics["mean_pairwise_kappa"] == pytest.approx(1 / 6, abs=1e-6)
    text = (repo / "reports/agreement.txt").read_text().splitlines()
    assert text[:2] == ["agreement = 0.6", "kappa = 0.167"]
    confusion = (repo / "plots/agreement/confusion.csv").read_text().splitlines()
    assert confusion[0] == "annotator_label,other_label,count"
    assert confusion[1:] == [
        "correct_and_polite,correct_and_polite,2",
        "correct_and_polite,over_refusal,1",
        "over_refusal,correct_and_polite,1",
        "over_refusal,over_refusal,1",
    ]


def test_gate_fails_the_stage_after_writing_its_numbers(repo: Path) -> None:
    build(
        repo,
        [
            row(i, "correct_and_polite", "over_refusal" if i % 2 else "correct_and_polite")
            for i in range(10)
        ]
        + [row(20, "over_refusal", "over_refusal")],
    )
    with pytest.raises(
        GateError,
        match=r"Agreement gate failed: percent agreement is 0\.545, below agreement.min_percent_agreement = 0.6",
    ):
        agreement.run(
            LABELLED,
            guidelines.load(),
            {"min_percent_agreement": 0.6, "min_kappa": None, "bootstrap": 0},
        )
    report = json.loads((repo / "reports/agreement.json").read_text())
    assert report["gates"]["failed"] and report["percent_agreement"]["value"] == pytest.approx(
        6 / 11
    )


def test_undefined_statistic_skips_its_gate_and_says_so(repo: Path) -> None:
    build(repo, [row(i) for i in range(4)])  # everyone always says correct_and_polite
    metrics = pipeline.run_stage("agreement")
    assert metrics["mean_pairwise_kappa"] is None
    report = json.loads((repo / "reports/agreement.json").read_text())
    assert report["gates"]["skipped"] == [
        "mean pairwise Cohen's kappa is undefined, so agreement.min_kappa = 0.3 was not checked",
        "Krippendorff's alpha (nominal) is undefined, so agreement.min_alpha = 0.4 was not checked",
    ]
