"""Stage ``agreement``: how far annotators agree, why they disagree, and the gates on it.

Reads the labelled records (so each annotator can be compared with the final label), computes the
statistics suite of ``flywheel.stats`` and writes the full report, the headline metrics for
``dvc metrics diff``, and two plots for ``dvc plots show``. A gate in ``params.yaml: agreement``
that is not met fails the stage after its outputs are written, so the numbers that failed it can
be read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import store
from flywheel.agree import format_text
from flywheel.errors import GateError
from flywheel.guidelines import Guidelines
from flywheel.io import write_json, write_text
from flywheel.stats import Ratings, summarize


def ratings_of(table: pa.Table, guidelines: Guidelines) -> tuple[Ratings, dict[str, str]]:
    """Ratings (items x annotators) from the records' annotations, and the final labels by id."""
    annotations = table.column("annotations")
    lengths = pc.list_value_length(annotations).to_numpy(zero_copy_only=False)
    ids = table.column("id").to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(annotations)
    ratings = Ratings.from_long(
        pa.array(np.repeat(ids, lengths), pa.string()),
        pc.struct_field(flat, "annotator"),
        pc.struct_field(flat, "label"),
        label_order=guidelines.label_names,
    )
    final = {
        i: lab
        for i, lab in zip(
            table.column("id").to_pylist(), table.column("label").to_pylist(), strict=True
        )
        if lab is not None
    }
    return ratings, final


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers worth a `dvc metrics diff`: one value each, null when undefined."""
    alpha = report["krippendorff_alpha"]
    return {
        "items": report["items"],
        "annotators": len(report["annotators"]),
        "percent_agreement": report["percent_agreement"]["value"],
        "mean_pairwise_kappa": report["mean_pairwise_kappa"]["value"],
        "fleiss_kappa": report["fleiss_kappa"]["value"],
        "krippendorff_alpha": alpha["nominal"]["value"],
        "gwet_ac1": report["gwet_ac1"]["value"],
        "left_out_items": report["left_out_items"],
    }


def gates(metrics: dict[str, Any], params: dict[str, Any]) -> dict[str, list[str]]:
    """The gates in params: ``failed`` and ``skipped`` (statistic undefined), as sentences.

    An undefined statistic (say kappa when every rating is the same label) says nothing about
    low agreement, so it skips its gate rather than failing the build; the report says so.
    """
    checks = (
        ("min_percent_agreement", "percent_agreement", "percent agreement"),
        ("min_kappa", "mean_pairwise_kappa", "mean pairwise Cohen's kappa"),
        ("min_alpha", "krippendorff_alpha", "Krippendorff's alpha (nominal)"),
    )
    out: dict[str, list[str]] = {"failed": [], "skipped": []}
    for key, metric, name in checks:
        floor = params.get(key)
        value = metrics[metric]
        if floor is None:
            continue
        if value is None:
            out["skipped"].append(
                f"{name} is undefined, so agreement.{key} = {floor} was not checked"
            )
        elif value < floor:
            out["failed"].append(f"{name} is {value:.3f}, below agreement.{key} = {floor}")
    return out


def plots(report: dict[str, Any]) -> tuple[str, str]:
    """CSV for the annotator confusion matrix and for per-label agreement."""
    conf = report["confusion"]
    labels = conf["labels"]
    rows = ["annotator_label,other_label,count"]
    rows += [
        f"{a},{b},{conf['matrix'][i][j]}"
        for i, a in enumerate(labels)
        for j, b in enumerate(labels)
        if conf["matrix"][i][j]
    ]
    per = ["label,kappa,prevalence"]
    for item in report["per_label"]:
        kappa = item["kappa"]["value"]
        per.append(f"{item['label']},{'' if kappa is None else kappa},{item['prevalence']}")
    return "\n".join(rows) + "\n", "\n".join(per) + "\n"


@dataclass(frozen=True)
class Outputs:
    report: Path = Path("reports/agreement.json")
    text: Path = Path("reports/agreement.txt")
    metrics: Path = Path("metrics/agreement.json")
    confusion: Path = Path("plots/agreement/confusion.csv")
    per_label: Path = Path("plots/agreement/per_label.csv")


def run(
    layers: Sequence[Path],
    guidelines: Guidelines,
    params: dict[str, Any],
    outputs: Outputs = Outputs(),
) -> dict[str, Any]:
    ratings, final = ratings_of(store.load(layers, ["id", "annotations", "label"]), guidelines)
    level = params.get("level", "nominal")
    summary = summarize(
        ratings,
        level=level,
        # Guidelines that declare their labels ordinal get weighted kappa even at nominal level.
        weights="linear" if guidelines.ordinal and level == "nominal" else None,
        reference=final,
        bootstrap=int(params.get("bootstrap", 200)),
        seed=int(params.get("seed", 0)),
        boundary_pairs=guidelines.boundary_pairs(),
    )
    text = format_text(summary)
    report = summary.to_dict()
    metrics = headline(report)
    verdict = gates(metrics, params)
    report["gates"] = verdict
    confusion_csv, per_label_csv = plots(report)
    write_json(outputs.report, report)
    write_text(outputs.text, text)
    write_json(outputs.metrics, metrics)
    write_text(outputs.confusion, confusion_csv)
    write_text(outputs.per_label, per_label_csv)
    if verdict["failed"]:
        raise GateError(
            "Agreement gate failed: "
            + "; ".join(verdict["failed"])
            + ". Read reports/agreement.json "
            "(disagreements) and fix the guidelines or the labels, or lower the gate in params.yaml."
        )
    return metrics
