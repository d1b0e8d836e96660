"""The ledger: every input row ends in exactly one recorded fate, whatever the exports hold."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import fresh_repo, manifest, row, write_export
from flywheel import exports, ingest_cache, pipeline, records, report, store
from flywheel.errors import GateError

LABELS = ["correct_and_polite", "hallucinated_promise", "over_refusal", "harsh_refusal", "unusable"]
BAD = ["{broken json", "[1, 2]", "BAD_CONFIDENCE", "BAD_LABEL", "EMPTY_RESPONSE"]


def open_gates(root: Path) -> None:
    path = root / "params.yaml"
    data = yaml.safe_load(path.read_text())
    data["agreement"].update(min_percent_agreement=None, min_kappa=None, min_alpha=None)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def wide_rows(spec: list[tuple[int, str, str, float, str | None]]) -> list[dict[str, Any] | str]:
    out: list[dict[str, Any] | str] = []
    for i, (text, a, b, conf, bad) in enumerate(spec):
        r = row(i, a, b, model_confidence=conf, response=f"Reply number {text}.")
        if bad in ("{broken json", "[1, 2]"):
            out.append(bad)
            continue
        if bad == "BAD_CONFIDENCE":
            r["model_confidence"] = "high"
        elif bad == "BAD_LABEL":
            r["label_b"] = "polite"
        elif bad == "EMPTY_RESPONSE":
            r["response"] = ""
        out.append(r)
    return out


def long_rows(spec: list[tuple[int, list[str]]]) -> list[dict[str, Any]]:
    return [
        {
            "item_id": f"e{i}",
            "annotator": f"ann{j % 3}",
            "label": lab,
            "prompt": "Can I change my delivery address?",
            "response": f"Answer {text}.",
        }
        for i, (text, labels) in enumerate(spec)
        for j, lab in enumerate(labels)
    ]


wide = st.lists(
    st.tuples(
        st.integers(0, 6),
        st.sampled_from(LABELS),
        st.sampled_from(LABELS),
        st.floats(0, 1),
        st.one_of(st.none(), st.sampled_from(BAD)),
    ),
    max_size=25,
)
long = st.lists(
    st.tuples(st.integers(0, 6), st.lists(st.sampled_from(LABELS), min_size=1, max_size=4)),
    max_size=10,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wide, wide, long)
def test_ledger_balances_for_random_exports(r1: list[Any], r2: list[Any], lg: list[Any]) -> None:
    with fresh_repo() as root:
        open_gates(root)
        write_export(root, manifest("td-1"), wide_rows(r1))
        m2 = manifest("td-2", round=2, source="prod_low_confidence", reason="low_confidence")
        write_export(root, m2, wide_rows(r2))
        ml = manifest(
            "ev-1",
            source="eval_suite",
            reason="eval_failure",
            file="r.csv",
            format="csv",
            fields={"prompt": "prompt", "response": "response"},
            annotations={
                "layout": "long",
                "item": "item_id",
                "annotator": "annotator",
                "label": "label",
            },
        )
        write_export(root, ml, long_rows(lg))
        pipeline.run_all()
        ledger = pq.read_table(root / "data/ledger.parquet").to_pylist()
        expected_rows = sum(1 for _ in r1) + sum(1 for _ in r2) + sum(len(x[1]) for x in lg)
        assert len(ledger) == expected_rows
        assert {(r["file"], r["line"]) for r in ledger}.__len__() == expected_rows
        assert all(r["fate"] in records.FATES for r in ledger)
        bad = sum(1 for x in r1 + r2 if x[4] is not None)
        assert Counter(r["fate"] for r in ledger)["quarantined"] == bad
        final = store.load(pipeline.LAYERS["report"], ["split"]).to_pylist()
        train = pq.read_table(root / "data/splits/train").num_rows
        evals = pq.read_table(root / "data/splits/eval").num_rows
        assert train + evals == sum(1 for r in final if r["split"])


def test_unbalanced_ledger_is_refused(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(1), row(2)])
    pipeline.run_all()
    rows = ingest_cache.ledger_rows(Path("data/interim/ingest"), exports.discover(Path("data/raw")))
    final = pq.read_table(repo / "data/interim/split")
    ledger = report.ledger(rows, final)
    assert report.check_ledger(ledger, final)
    with pytest.raises(GateError, match="1 records were delivered by no input row"):
        report.check_ledger(ledger.slice(0, 1), final)
    broken = ledger.set_column(3, "fate", [["train", "lost"]])
    with pytest.raises(
        GateError, match=r"1 rows have no terminal fate \(first: data/raw/td-1/records.jsonl:2\)"
    ):
        report.check_ledger(broken, final)
