from __future__ import annotations

import collections
import csv as csv_mod
import io
import json
import math
import shutil
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import PROJECT, fresh_repo, manifest, row, write_export
from flywheel import (
    exports,
    guidelines,
    ingest,
    ingest_cache,
    ingest_text,
    params,
    parts,
    schemas,
    store,
    validate_rows,
)
from flywheel import records as records_mod
from flywheel.errors import ConfigError
from flywheel.guidelines import UNCATEGORIZED
from flywheel.ingest_text import content_hashes, normalized
from flywheel.scrub import scrub


def ledger_of(repo: Path) -> pa.Table:
    """The row ledger, from the per-export files beside the records."""
    found = exports.discover(repo / "data" / "raw")
    return ingest_cache.ledger_rows(repo / ingest.Outputs().records, found)


def run(repo: Path) -> dict[str, object]:
    p = params.load(repo / "params.yaml")
    return ingest.run(
        Path("data/raw"), guidelines.load(repo / "guidelines/labels.yaml"), p["ingest"]
    )


def records(repo: Path) -> list[dict[str, object]]:
    return store.load([repo / ingest.Outputs().records]).to_pylist()


def output_bytes(repo: Path) -> dict[str, bytes]:
    """Every file ingest writes, by path."""
    out = ingest.Outputs()
    files = [*(repo / out.records).iterdir(), repo / out.quarantine]
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(files)}


def quarantine(repo: Path) -> list[dict[str, object]]:
    text = (repo / ingest.Outputs().quarantine).read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_wide_jsonl_maps_fields_annotations_and_ids(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(1), row(2, b="hallucinated_promise")])
    metrics = run(repo)
    recs = records(repo)
    assert metrics["records"] == 2
    assert [r["id"] for r in recs] == ["prod_thumbs_down/td-0001", "prod_thumbs_down/td-0002"]
    first = recs[0]
    assert first["source"] == "prod_thumbs_down" and first["reason"] == "thumbs_down"
    assert first["round"] == 1 and first["export_id"] == "td-1"
    assert first["origin"] == "data/raw/td-1/records.jsonl:1"
    assert [
        (a["annotator"], a["label"], a["guideline_version"]) for a in recs[1]["annotations"]
    ] == [
        ("ann-a", "correct_and_polite", "1.2"),
        ("ann-b", "hallucinated_promise", "1.2"),
    ]
    assert len(first["content_hash"]) == 32


def test_long_csv_groups_rows_into_records_and_supersedes_repeats(repo: Path) -> None:
    man = manifest(
        "eval-1",
        source="eval_suite",
        reason="eval_failure",
        file="records.csv",
        format="csv",
        fields={"prompt": "prompt", "response": "response", "reference": "expected"},
        annotations={
            "layout": "long",
            "item": "item_id",
            "annotator": "annotator",
            "label": "label",
        },
    )
    base = {
        "prompt": "Can I change my address?",
        "response": "Yes, in Settings.",
        "expected": "Yes.",
    }
    rows = [
        {"item_id": "e1", "annotator": "x", "label": "correct_but_too_brief", **base},
        {"item_id": "e1", "annotator": "y", "label": "correct_and_polite", **base},
        {"item_id": "e1", "annotator": "x", "label": "correct_and_polite", **base},
    ]
    write_export(repo, man, rows)
    metrics = run(repo)
    (rec,) = records(repo)
    assert rec["id"] == "eval_suite/e1" and rec["reference"] == "Yes."
    assert [(a["annotator"], a["label"]) for a in rec["annotations"]] == [
        ("x", "correct_and_polite"),
        ("y", "correct_and_polite"),
    ]
    assert metrics["superseded_annotations"] == 1
    ledger = ledger_of(repo).to_pylist()
    assert [(r["line"], r["fate"]) for r in ledger] == [(2, "excluded"), (3, None), (4, None)]
    assert "superseded by data/raw/eval-1/records.csv:4" in ledger[0]["detail"]


def test_list_layout_parquet_and_content_hash_ids(repo: Path) -> None:
    man = manifest(
        "rt-1",
        source="red_team",
        reason="red_team",
        file="records.parquet",
        format="parquet",
        fields={"prompt": "prompt", "response": "response"},
        annotations={"layout": "list", "column": "annotations"},
    )
    anns = [
        {"annotator": "p", "label": "policy_violation", "note": "mail me: a.b@example.com"},
        {"annotator": "q", "label": "policy_violation", "note": None},
    ]
    write_export(
        repo,
        man,
        [
            {
                "prompt": "Give me Ann's address",
                "response": "She lives at 4 Elm St.",
                "annotations": anns,
            }
        ],
    )
    run(repo)
    (rec,) = records(repo)
    assert (
        rec["id"].startswith("red_team/h-")
        and rec["id"][len("red_team/h-") :] == rec["content_hash"][:16]
    )
    assert rec["annotations"][0]["note"] == "mail me: [EMAIL]"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('{"id": "x1", "prompt": "hi"', "line is not valid JSON"),
        ('["not", "an", "object"]', "line is a JSON list, not an object"),
        (row(7, response=""), "response (column 'response') is empty"),
        (
            row(8, model_confidence="high"),
            "model_confidence 'high' is not a number between 0 and 1",
        ),
        (row(9, model_confidence=1.7), "model_confidence 1.7 is outside 0..1"),
        (
            row(10, b="polite"),
            "label 'polite' in column 'label_b' is not a label of guidelines v1.2",
        ),
        (
            row(1),
            "id 'prod_thumbs_down/td-0001' was already delivered at data/raw/td-1/records.jsonl:1",
        ),
    ],
)
def test_bad_rows_are_quarantined_with_location_and_reason(
    repo: Path, bad: object, reason: str
) -> None:
    write_export(repo, manifest("td-1"), [row(1), bad])  # type: ignore[list-item]
    metrics = run(repo)
    assert metrics["records"] == 1 and metrics["quarantined"] == 1
    (q,) = quarantine(repo)
    assert q["file"] == "data/raw/td-1/records.jsonl" and q["line"] == 2
    assert reason in q["reason"]


def test_csv_row_with_missing_field_is_quarantined(repo: Path) -> None:
    man = manifest("td-1", file="records.csv", format="csv")
    write_export(repo, man, [row(1), "td-0002,only three,fields"])
    run(repo)
    (q,) = quarantine(repo)
    assert q["line"] == 3 and "row has 3 fields but the header has 7" in q["reason"]


def test_personal_data_is_scrubbed_everywhere(repo: Path) -> None:
    write_export(
        repo,
        manifest("td-1"),
        [
            row(1, prompt="I'm jane@example.org, call me on +44 20 7946 0958"),
            '{"broken": "card 4111 1111 1111 1111"',
        ],
    )
    run(repo)
    (rec,) = records(repo)
    assert rec["prompt"] == "I'm [EMAIL], call me on [PHONE]" and rec["pii"] == ["email", "phone"]
    (q,) = quarantine(repo)
    assert "4111" not in q["raw"] and "[CARD]" in q["raw"]


def test_missing_manifest_names_folder_and_fix(repo: Path) -> None:
    (repo / "data/raw/orphan").mkdir()
    with pytest.raises(
        ConfigError, match=r"data/raw/orphan has no manifest.yaml; every export folder needs one"
    ):
        run(repo)


def test_unknown_format_is_a_config_error_naming_the_manifest(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(1)])
    path = repo / "data/raw/td-1/manifest.yaml"
    path.write_text(path.read_text().replace("format: jsonl", "format: xlsx"))
    with pytest.raises(
        ConfigError,
        match=r"manifest.yaml does not match schema/manifest.schema.json at format: 'xlsx' is not one of",
    ):
        run(repo)


def test_missing_file_lists_what_is_there(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(1)])
    (repo / "data/raw/td-1/records.jsonl").rename(repo / "data/raw/td-1/export.jsonl")
    with pytest.raises(
        ConfigError,
        match=r"names file 'records.jsonl', which is not in .*files there: export.jsonl",
    ):
        run(repo)


def test_export_id_must_match_folder(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(1)])
    (repo / "data/raw/td-1").rename(repo / "data/raw/td-2")
    with pytest.raises(ConfigError, match=r"export_id 'td-1' differs from the folder name 'td-2'"):
        run(repo)


def test_ingest_is_deterministic_regardless_of_file_order(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(i) for i in range(5)])
    write_export(repo, manifest("td-2", round=2), [row(i) for i in range(5, 9)])
    run(repo)
    first = output_bytes(repo)
    run(repo)
    assert output_bytes(repo) == first


def test_unchanged_exports_keep_their_part_and_the_outputs_equal_a_fresh_build(
    repo: Path,
) -> None:
    write_export(repo, manifest("td-1"), [row(i) for i in range(5)] + ["{broken"])
    write_export(repo, manifest("td-2", round=2), [row(i) for i in range(5, 9)])
    run(repo)
    folder = repo / ingest.Outputs().records
    kept = folder / store.partition_name(1, "td-1")
    stamp = kept.stat().st_mtime_ns
    # A new round and a changed export: only those two are mapped again.
    write_export(repo, manifest("td-3", round=3), [row(i) for i in range(9, 12)])
    write_export(repo, manifest("td-2", round=2), [row(i, b="over_refusal") for i in range(5, 9)])
    metrics = run(repo)
    assert kept.stat().st_mtime_ns == stamp
    assert metrics["records"] == 5 + 4 + 3
    incremental = output_bytes(repo)
    shutil.rmtree(folder)
    run(repo)
    assert output_bytes(repo) == incremental
    # A removed export takes its part with it.
    shutil.rmtree(repo / "data/raw/td-3")
    run(repo)
    assert not list(folder.glob("r0003-*"))


def whole_metrics(repo: Path) -> dict[str, object]:
    """Ingest's metrics counted over its whole outputs, as the stage counted them before each
    part kept its share."""
    ledger = ledger_of(repo)
    table = store.load([repo / ingest.Outputs().records], ["round", "pii"])

    def counted(values: pa.Array | pa.ChunkedArray) -> dict[object, int]:
        return dict(sorted(collections.Counter(values.to_pylist()).items()))

    return {
        "rows_read": ledger.num_rows,
        "records": table.num_rows,
        "quarantined": len(quarantine(repo)),
        "superseded_annotations": ledger.column("fate").to_pylist().count("excluded"),
        "exports": len(set(ledger.column("file").to_pylist())),
        "pii_records": sum(1 for kinds in table.column("pii").to_pylist() if kinds),
        "pii_kinds": counted(pa.chunked_array(table.column("pii")).combine_chunks().flatten()),
        "records_per_round": {str(k): n for k, n in counted(table.column("round")).items()},
    }


def test_metrics_are_the_parts_shares_added(repo: Path) -> None:
    """Each part keeps its share of the metrics; their sum is the count over the whole outputs,
    also for a part written without its share (it is counted from its files)."""
    email = {"prompt": "Mail me at jane.doe@example.com about order #A1-55, please."}
    write_export(repo, manifest("td-1"), [row(0, **email), row(1), "{broken"])
    write_export(repo, manifest("td-2", round=2), [row(i) for i in range(2, 5)])
    write_export(repo, manifest("td-3", round=10), [row(i) for i in range(5, 7)] + ["[]"])
    write_export(repo, manifest("td-4", round=3), ["{broken"])
    write_export(repo, manifest("td-0", round=4), [])  # delivered nothing: not counted
    first = run(repo)
    assert first == whole_metrics(repo)
    assert list(first["records_per_round"]) == ["1", "2", "10"]  # by number: td-4 has none
    assert first["exports"] == 4 and first["pii_records"] == 1 and first["quarantined"] == 3
    # A part whose records file lacks its share (written before shares were kept).
    part = repo / ingest.Outputs().records / store.partition_name(2, "td-2")
    table = pq.read_table(part)
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != parts.COUNTS}
    pq.write_table(table.replace_schema_metadata(meta), part)
    assert run(repo) == first
    write_export(repo, manifest("td-5", round=11), [row(i) for i in range(7, 9)])
    assert run(repo) == whole_metrics(repo)


def test_worker_processes_write_the_same_parts_as_one_process(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above ``PROCESS_BYTES`` exports are mapped in spawned workers; the bytes must not change."""
    write_export(repo, manifest("td-1"), [row(i) for i in range(6)] + ["{broken"])
    write_export(repo, manifest("td-2", round=2), [row(i) for i in range(6, 11)])
    write_export(repo, manifest("td-3", round=3), [row(i) for i in range(11, 14)])
    run(repo)
    alone = output_bytes(repo)
    shutil.rmtree(repo / ingest.Outputs().records)
    monkeypatch.setattr(ingest, "PROCESS_BYTES", 0)
    started: list[int] = []
    real = ingest._workers
    monkeypatch.setattr(ingest, "_workers", lambda n: started.append(n) or real(n))
    run(repo)
    assert started == [3]  # one pool, started before the files were hashed
    assert output_bytes(repo) == alone


def test_exports_sharing_ids_are_settled_together_as_one_ingest(repo: Path) -> None:
    write_export(repo, manifest("td-1"), [row(i) for i in range(4)])
    write_export(repo, manifest("td-2", round=2), [row(i) for i in range(2, 6)])
    run(repo)  # td-2 repeats ids 2 and 3: the first delivery wins
    p = params.load(repo / "params.yaml")
    whole = ingest.ingest(
        Path("data/raw"), guidelines.load(repo / "guidelines/labels.yaml"), p["ingest"]
    )
    assert records(repo) == whole.records.to_pylist()
    assert ledger_of(repo).equals(whole.rows)
    assert quarantine(repo) == whole.quarantine
    assert [q["reason"] for q in quarantine(repo)] == [
        "id 'prod_thumbs_down/td-0002' was already delivered at data/raw/td-1/records.jsonl:3",
        "id 'prod_thumbs_down/td-0003' was already delivered at data/raw/td-1/records.jsonl:4",
    ]


def test_a_later_export_repeating_an_id_settles_every_export_together(repo: Path) -> None:
    """The repeat is found by the parts' id hashes when the earlier parts are reused."""
    write_export(repo, manifest("td-1"), [row(i) for i in range(4)])
    run(repo)
    write_export(repo, manifest("td-2", round=2), [row(i) for i in range(3, 6)])
    run(repo)
    reasons = [q["reason"] for q in quarantine(repo)]
    assert reasons == [
        "id 'prod_thumbs_down/td-0003' was already delivered at data/raw/td-1/records.jsonl:4"
    ]


def parts_of(repo: Path) -> tuple[Path, list[str]]:
    folder = repo / ingest.Outputs().records
    return folder, sorted(p.name for p in folder.glob("*.records.parquet"))


def test_ids_repeat_asks_the_ids_only_when_hashes_repeat(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_export(repo, manifest("td-1"), [row(i) for i in range(4)])
    write_export(repo, manifest("td-2", round=2), [row(i) for i in range(4, 8)])
    run(repo)
    folder, names = parts_of(repo)
    read: list[str] = []
    real = ingest_cache.read_ids
    monkeypatch.setattr(ingest_cache, "read_ids", lambda f, n: read.append(n) or real(f, n))
    assert not ingest_cache.ids_repeat(folder, names)
    assert read == []  # the hashes beside the parts decided
    # Every hash equal, as a collision would make them: the ids decide, and they differ.
    monkeypatch.setattr(ingest_cache, "id_hashes", lambda ids: np.zeros(len(ids), np.uint64))
    for name in names:
        (folder / name.replace(".records.parquet", ingest_cache.IDS_SUFFIX)).unlink()
    assert not ingest_cache.ids_repeat(folder, names)
    assert read == [*names, *names]  # hashed from the ids (no file beside), then compared


@pytest.mark.parametrize("damage", ["missing", "torn", "short", "not numbers"])
def test_ids_repeat_hashes_the_ids_when_the_file_beside_is_unusable(
    repo: Path, damage: str
) -> None:
    write_export(repo, manifest("td-1"), [row(i) for i in range(4)])
    write_export(repo, manifest("td-2", round=2), [row(i) for i in range(6, 8)])
    run(repo)
    folder, names = parts_of(repo)
    # Make td-2 repeat an id of td-1 behind the hashes' back: only its ids tell.
    second = folder / names[1]
    table = pq.read_table(second)
    first_id = pq.read_table(folder / names[0]).column("id")[0]
    ids = pa.array([first_id.as_py(), *table.column("id").to_pylist()[1:]])
    pq.write_table(table.set_column(table.schema.get_field_index("id"), "id", ids), second)
    side = folder / names[1].replace(".records.parquet", ingest_cache.IDS_SUFFIX)
    if damage == "missing":
        side.unlink()
    elif damage == "torn":
        side.write_bytes(side.read_bytes()[:20])
    elif damage == "short":
        np.save(side, np.zeros(1, np.uint64))
    else:
        np.save(side, np.array(["a", "b"]))
    assert ingest_cache.ids_repeat(folder, names)


# --- The vectorized parts, each against the definition it replaces ----------------------------


SPACEY = st.lists(
    st.one_of(
        st.sampled_from(
            [
                " ",
                "  ",
                "\t",
                "\n",
                "\r\n",
                "\x0b",
                "\x0c",
                "\x1c",
                "\x1f",
                "\x85",
                "\xa0",
                "\u2028",
                "\u3000",
                "A",
                "Straße",
                "İ",
                "ﬁ",
                "Ⅻ",
                "Ｆｕｌｌ",  # noqa: RUF001 (full-width letters: NFKC folds them)
                "e\u0301",
                "Σ",
                "ς",
                "\U0001d400",
            ]
        ),
        st.text(alphabet="abcXYZ 019.,!'", max_size=8),
        st.text(max_size=4),
    ),
    max_size=10,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), SPACEY), max_size=12), st.lists(SPACEY, max_size=12))
@example(["  Hello\tWorld \n", "x\x1cy", "ÉCOLE  ﬁne", None], ["A", "b  c", " ", ""])
def test_normalized_and_content_hashes_match_the_definitions(
    prompts: list[str | None], responses: list[str]
) -> None:
    # Both ways: row by row (few texts) and through the compiled normalizer (many).
    for compiled_from in (0, 10**9):
        with mock.patch.object(ingest_text, "COMPILED_FROM", compiled_from):
            got = normalized(pa.array(prompts, pa.string())).to_pylist()
            assert got == [None if p is None else ingest.normalize(p) for p in prompts]
            pairs = list(zip(prompts, responses, strict=False))
            hashes = content_hashes(
                pa.array([p for p, _ in pairs], pa.string()),
                pa.array([r for _, r in pairs], pa.string()),
            ).to_pylist()
            assert hashes == [None if p is None else ingest.content_hash(p, r) for p, r in pairs]


# Record fields ingest produces, each from values that pass and values that fail the schema.
IDS = st.one_of(
    st.sampled_from(
        [
            "prod/td-1",
            "red_team/h-0123456789abcdef",
            "a/b/c",
            "a/x\n",
            "a/x\n\n",
            "A/x",
            "-a/x",
            "a/",
            "/x",
            "a/x y",
            "a/x\xa0",
            "a/\u2028",
            "a/é",
            "a/\x1c",
            "a/\x00",
            "",
            "prod",
        ]
    ),
    st.text(max_size=8),
)
HASHES = st.one_of(
    st.sampled_from(["0" * 32, "0123456789abcdef" * 2, "0" * 32 + "\n", "0" * 31, "A" * 32, ""]),
    st.text(alphabet="0123456789abcdefg\n", min_size=30, max_size=34),
)
MAYBE_TEXT = st.one_of(st.none(), st.sampled_from(["", " ", "x", "é"]), st.text(max_size=5))
ANNOTATION = st.fixed_dictionaries(
    {
        "annotator": st.one_of(st.none(), st.sampled_from(["", "amara", "é"])),
        "label": st.one_of(st.none(), st.sampled_from(["", "correct_and_polite", "x"])),
        "guideline_version": st.one_of(st.none(), st.sampled_from(["", "1.2"])),
        "note": MAYBE_TEXT,
    }
)
RECORD = st.fixed_dictionaries(
    {
        "id": st.one_of(st.none(), IDS),
        "source": st.one_of(st.none(), st.sampled_from(["", "prod", "é"])),
        "export_id": st.one_of(st.none(), st.sampled_from(["", "td-1"])),
        "round": st.one_of(st.none(), st.integers(-2, 3)),
        "reason": st.one_of(st.none(), st.sampled_from(["thumbs_down", "manual", "", "other"])),
        "exported_at": MAYBE_TEXT,
        "prompt": MAYBE_TEXT,
        "response": MAYBE_TEXT,
        "reference": MAYBE_TEXT,
        "model_label": MAYBE_TEXT,
        "model_confidence": st.one_of(
            st.none(),
            st.sampled_from([0.0, -0.0, 1.0, 0.5, -1e-9, 1.0000001, math.nan, math.inf, -math.inf]),
            st.floats(-2, 2),
        ),
        "annotations": st.one_of(st.none(), st.lists(st.one_of(st.none(), ANNOTATION), max_size=3)),
        "label_status": st.one_of(st.none(), st.sampled_from(["unlabeled", "agreed", "x"])),
        "reviewed": st.one_of(st.none(), st.booleans()),
        "error_category": st.one_of(st.none(), st.sampled_from(["", "uncategorized"])),
        "pii": st.one_of(st.none(), st.lists(st.one_of(st.none(), st.sampled_from(["email"])))),
        "content_hash": st.one_of(st.none(), HASHES),
        "origin": st.one_of(st.none(), st.sampled_from(["", "data/raw/x.jsonl:1"])),
    }
)
VALID = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["prod/td-1", "red_team/h-0123456789abcdef", "a/é"]),
        "source": st.just("prod"),
        "export_id": st.just("td-1"),
        "round": st.integers(1, 3),
        "reason": st.just("thumbs_down"),
        "exported_at": st.just("2026-09-01T09:00:00Z"),
        "prompt": st.text(min_size=1, max_size=5),
        "response": st.text(min_size=1, max_size=5),
        "reference": MAYBE_TEXT,
        "model_label": MAYBE_TEXT,
        "model_confidence": st.one_of(st.none(), st.floats(0, 1)),
        "annotations": st.lists(
            st.fixed_dictionaries(
                {
                    "annotator": st.just("amara"),
                    "label": st.just("over_refusal"),
                    "guideline_version": st.just("1.2"),
                    "note": MAYBE_TEXT,
                }
            ),
            max_size=2,
        ),
        "label_status": st.just("unlabeled"),
        "reviewed": st.just(False),
        "error_category": st.just("uncategorized"),
        "pii": st.lists(st.just("phone"), max_size=1),
        "content_hash": st.just("0123456789abcdef" * 2),
        "origin": st.just("data/raw/td-1/records.jsonl:1"),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(RECORD, VALID), min_size=1, max_size=12))
def test_vectorized_record_check_agrees_with_jsonschema(recs: list[dict[str, Any]]) -> None:
    schema = pa.schema([records_mod.SCHEMA.field(f) for f in validate_rows.FIELDS])
    table = pa.Table.from_pylist(recs, schema=schema)
    expected = [not schemas.errors("record", r) for r in recs]
    assert validate_rows.valid(table).tolist() == expected


# --- The whole stage against the row-at-a-time ingest it replaced ------------------------------


def _reference_record(ctx: Any, row: exports.RawRow) -> dict[str, Any]:
    """``ingest._record`` as it was before bulk ingest, verbatim."""
    values, fields, manifest = row.values, ctx.export.manifest["fields"], ctx.export.manifest
    assert values is not None
    pii: list[str] = []
    texts: dict[str, str | None] = {}
    for name, required in (("prompt", True), ("response", True), ("reference", False)):
        value = ingest._text(values, fields.get(name), name, required)
        if value is not None:
            if len(value) > ctx.max_chars:
                raise ingest.RowError(
                    f"{name} has {len(value)} characters, over ingest.max_chars {ctx.max_chars}"
                )
            value, kinds = scrub(value, ctx.scrub_kinds)
            pii.extend(k for k in kinds if k not in pii)
        texts[name] = value
    prompt, response = str(texts["prompt"]), str(texts["response"])
    chash = ingest.content_hash(prompt, response)
    native = ingest._text(values, fields.get("native_id"), "native_id", required=False)
    if manifest["annotations"]["layout"] == "long":
        native = ingest._text(values, manifest["annotations"]["item"], "item id", required=True)
    reason = (
        ingest._text(values, fields.get("reason"), "reason", required=False) or manifest["reason"]
    )
    record: dict[str, Any] = {
        "id": f"{manifest['source']}/{native.strip() if native else 'h-' + chash[:16]}",
        "source": manifest["source"],
        "export_id": manifest["export_id"],
        "round": manifest["round"],
        "reason": reason,
        "exported_at": str(manifest["exported_at"]),
        "prompt": prompt,
        "response": response,
        "reference": texts["reference"],
        "model_label": ingest._text(values, fields.get("model_label"), "model_label", False),
        "model_confidence": ingest._confidence(values, fields.get("model_confidence")),
        "annotations": ingest._annotations(ctx, values),
        "label_status": "unlabeled",
        "reviewed": False,
        "error_category": UNCATEGORIZED,
        "pii": pii,
        "content_hash": chash,
        "origin": f"{ctx.path}:{row.line}",
    }
    problems = schemas.errors("record", record)
    if problems:
        raise ingest.RowError("the mapped record " + "; ".join(problems))
    return record


def _reference_ingest(root: Path) -> tuple[list[Any], list[Any], list[Any]]:
    """The row-at-a-time ingest (records, ledger rows, quarantine), as it was."""
    p = params.load(root / "params.yaml")["ingest"]
    g = guidelines.load(root / "guidelines/labels.yaml")
    recs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for export in exports.discover(Path("data/raw")):
        ctx = ingest._Ctx(export, g, tuple(p["scrub"]), int(p["max_chars"]), export.file.as_posix())
        long_layout = export.manifest["annotations"]["layout"] == "long"
        pending: dict[str, dict[str, Any]] = {}
        carrier: dict[tuple[str, str], int] = {}
        for row in exports.read_rows(export):  # noqa: F402 (the reference keeps its old names)

            def quarantine(reason: str, row: exports.RawRow = row, ctx: Any = ctx) -> None:
                rows.append(
                    {
                        "file": ctx.path,
                        "line": row.line,
                        "record_id": None,
                        "fate": "quarantined",
                        "detail": reason,
                    }
                )
                quarantined.append(
                    {
                        "file": ctx.path,
                        "line": row.line,
                        "reason": reason,
                        "raw": scrub(row.raw, ctx.scrub_kinds)[0],
                    }
                )

            try:
                if row.error is not None:
                    raise ingest.RowError(row.error)
                record = _reference_record(ctx, row)
                rid = record["id"]
                if rid in seen and not (long_layout and rid in pending):
                    raise ingest.RowError(f"id '{rid}' was already delivered at {seen[rid]}")
            except ingest.RowError as exc:
                quarantine(str(exc))
                continue
            if long_layout and rid in pending:
                first = pending[rid]
                if (first["prompt"], first["response"]) != (record["prompt"], record["response"]):
                    quarantine(
                        f"prompt or response differs from the item's first row at {first['origin']}"
                    )
                    continue
                first["annotations"].extend(record["annotations"])
            else:
                pending[rid] = record
                seen[rid] = record["origin"]
            rows.append(
                {"file": ctx.path, "line": row.line, "record_id": rid, "fate": None, "detail": None}
            )
            for ann in record["annotations"] if long_layout else ():
                key = (rid, ann["annotator"])
                if key in carrier:
                    rows[carrier[key]].update(
                        fate="excluded",
                        detail=f"repeat annotation by {ann['annotator']} "
                        f"superseded by {ctx.path}:{row.line}",
                    )
                carrier[key] = len(rows) - 1
        for record in pending.values():
            by_annotator = {a["annotator"]: a for a in record["annotations"]}
            record["annotations"] = sorted(by_annotator.values(), key=lambda a: a["annotator"])
            recs.append(record)
    table = records_mod.conform(records_mod.from_rows(recs))
    ledger = pa.Table.from_pylist(rows, schema=ingest.ROWS_SCHEMA).sort_by(
        [("file", "ascending"), ("line", "ascending")]
    )
    quarantined.sort(key=lambda q: (q["file"], q["line"]))
    return table.to_pylist(), ledger.to_pylist(), quarantined


LABEL = st.one_of(
    st.none(),
    st.sampled_from(
        ["correct_and_polite", "over_refusal", "harsh_refusal", " over_refusal", "polite", "", " "]
    ),
)
TEXT = st.sampled_from(
    [
        "Where is order #A1001-55?",
        "It left on Monday.",
        "",
        " ",
        "\t",
        "\xa0",
        "\x1c",
        "x",
        "call +44 20 7946 0958",
        "mail jane@example.org",
        "card 4111 1111 1111 1111",
        "a\nb",
        'a, "quoted" b',
        "é ok",
        "Ⅻ  ﬁne",
        "y" * 41,
        "{not json}",
        "}{",
    ]
)
ANY_TEXT = st.one_of(TEXT, st.text(max_size=6))
SCALAR = st.one_of(st.none(), ANY_TEXT, st.integers(-1, 2), st.booleans(), st.floats(-1, 2))
CONFIDENCE = st.one_of(
    st.none(),
    st.sampled_from(
        [
            0.5,
            0.0,
            -0.0,
            1,
            1.0,
            1.7,
            -0.1,
            0,
            "0.5",
            "high",
            " 0.5",
            "1e-1",
            "0",
            "0.50",
            "",
            "  ",
            True,
            "1",
            "00.25",
            ".5",
            "5.",
            "-0",
        ]
    ),
    st.floats(0, 1),
)
NATIVE = st.sampled_from(["td-1", "td-2", "td-3", "", " td-1 ", "é-1", None, 5, "a b"])


def _value(draw: Any, kind: str, fmt: str) -> Any:
    strategy = {
        "text": st.one_of(TEXT, SCALAR) if fmt == "jsonl" else TEXT,
        "id": NATIVE,
        "label": LABEL,
        "confidence": CONFIDENCE,
        "reason": st.sampled_from(["thumbs_down", "manual", "bogus", "", None]),
    }[kind]
    value = draw(strategy)
    if fmt == "csv":
        return "" if value is None else str(value)
    if fmt == "parquet" and value is not None and not isinstance(value, str):
        return str(value)
    return value


@st.composite
def exports_strategy(draw: Any) -> list[tuple[dict[str, Any], list[Any]]]:
    out = []
    for n in range(draw(st.integers(1, 3))):
        fmt = draw(st.sampled_from(["jsonl", "jsonl", "csv", "csv", "parquet"]))
        layout = draw(
            st.sampled_from(
                ["wide", "long", "list", "none"] if fmt != "csv" else ["wide", "long", "none"]
            )
        )
        fields = {"prompt": "prompt", "response": "response"}
        for name, col in (
            ("native_id", "id"),
            ("reference", "expected"),
            ("model_label", "ml"),
            ("model_confidence", "conf"),
            ("reason", "why"),
        ):
            if draw(st.booleans()):
                fields[name] = col
        spec: dict[str, Any] = {"layout": layout}
        if layout == "wide":
            spec["columns"] = {
                "label_a": "ann-a",
                "label_b": draw(st.sampled_from(["ann-b", "ann-a"])),
            }
        elif layout == "long":
            spec.update(item="item", annotator="who", label="label")
            if draw(st.booleans()):
                spec["note"] = "note"
        elif layout == "list":
            spec["column"] = "anns"
        man = manifest(
            f"ex-{n}",
            source=draw(st.sampled_from(["prod_thumbs_down", "red_team"])),
            round=draw(st.integers(1, 2)),
            file=f"records.{fmt}",
            format=fmt,
            fields=fields,
            annotations=spec,
        )
        if draw(st.booleans()):
            del man["guideline_version"]
        columns = {
            col: kind
            for name, col in fields.items()
            for kind in [
                {"native_id": "id", "model_confidence": "confidence", "reason": "reason"}.get(
                    name, "text"
                )
            ]
        }
        if layout == "wide":
            columns.update(label_a="label", label_b="label")
        elif layout == "long":
            columns.update(item="id", who="text", label="label", note="text")
        rows: list[Any] = []
        for _ in range(draw(st.integers(0, 6))):
            if fmt != "parquet" and draw(st.integers(0, 5)) == 0:
                rows.append(
                    draw(
                        st.sampled_from(
                            [
                                '{"prompt": "hi"',
                                "[1, 2]",
                                "",
                                "   ",
                                '{"a": 1}{"a": 2}',
                                "{'a': 1}",
                                '{"prompt": "a", "prompt": "b", "response": "c"}',
                                "\ufeff{}",
                                "null",
                                "x,y",
                                'a,"b',
                                "only,three,fields",
                                ",,,",
                                "\x0c",
                            ]
                        )
                    )
                )
                continue
            row = {
                col: _value(draw, kind, fmt)
                for col, kind in columns.items()
                if fmt == "parquet" or draw(st.integers(0, 7)) > 0
            }
            if layout == "list":
                row["anns"] = draw(
                    st.one_of(
                        st.none(),
                        st.lists(
                            st.fixed_dictionaries(
                                {"annotator": st.sampled_from(["p", "q"])},
                                optional={
                                    "label": LABEL,
                                    "note": st.one_of(st.none(), TEXT),
                                    "guideline_version": st.sampled_from(["", "1.1", None]),
                                },
                            ),
                            max_size=3,
                        ),
                        st.just("[]") if fmt == "jsonl" else st.just([]),
                    )
                )
            rows.append(row)
        if fmt == "parquet":
            rows = [r for r in rows if isinstance(r, dict)]
            if layout == "list":
                for r in rows:
                    r["anns"] = [
                        {
                            "annotator": a["annotator"],
                            "label": a.get("label"),
                            "note": a.get("note"),
                            "guideline_version": a.get("guideline_version"),
                        }
                        for a in (r["anns"] if isinstance(r["anns"], list) else [])
                    ]
        out.append((man, rows))
    return out


def _write(root: Path, man: dict[str, Any], rows: list[Any], style: int) -> None:
    """Write an export, in one of a few dialects of its format."""
    folder = root / "data" / "raw" / man["export_id"]
    if man["format"] != "csv" or not style:
        write_export(root, man, rows)
    if man["format"] == "jsonl" and style:
        path = folder / man["file"]
        lines = [
            r
            if isinstance(r, str)
            else json.dumps(
                r, ensure_ascii=style == 2, separators=(",", ":") if style == 2 else None
            )
            for r in rows
        ]
        path.write_bytes(("\r\n" if style == 1 else "\n").join(lines).encode("utf-8"))
    elif man["format"] == "csv" and style:
        write_export(root, man, [])
        dicts = [r for r in rows if isinstance(r, dict)]
        header = sorted({k for r in dicts for k in r}) or ["prompt", "response"]
        buf = io.StringIO()
        w = csv_mod.writer(
            buf,
            lineterminator="\r\n" if style == 1 else "\n",
            quoting=csv_mod.QUOTE_ALL if style == 2 else csv_mod.QUOTE_MINIMAL,
        )
        w.writerow(header)
        for r in rows:
            if isinstance(r, str):
                buf.write(r + "\n")
            else:
                w.writerow([r.get(h, "") for h in header])
        (folder / man["file"]).write_text(buf.getvalue(), encoding="utf-8", newline="")


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(exports_strategy(), st.integers(0, 2))
def test_bulk_ingest_equals_the_row_at_a_time_ingest(
    spec: list[tuple[dict[str, Any], list[Any]]], style: int
) -> None:
    with fresh_repo() as root:
        for man, rows in spec:
            _write(root, man, rows, style)
        p = params.load(root / "params.yaml")["ingest"]
        got = ingest.ingest(Path("data/raw"), guidelines.load(root / "guidelines/labels.yaml"), p)
        want_records, want_rows, want_quarantine = _reference_ingest(root)
        assert got.records.schema == records_mod.SCHEMA
        assert got.records.to_pylist() == want_records
        assert got.rows.to_pylist() == want_rows
        assert got.quarantine == want_quarantine


def test_bulk_readers_fall_back_for_files_they_cannot_vouch_for(repo: Path) -> None:
    # A byte-order mark, a bare carriage return, a stray quote inside a CSV field, bytes that are
    # not UTF-8: the row reader reads these files, with its own (sometimes odd) results.
    man = manifest("td-1", file="records.csv", format="csv")
    path = write_export(repo, man, [row(1), row(2)])
    text = path.read_text()
    for variant in (
        "\ufeff" + text,
        text.replace("\n", "\r", 1),
        text.replace("Monday", 'Mon"day'),
    ):
        path.write_text(variant, encoding="utf-8", newline="")
        got = ingest.ingest(
            Path("data/raw"),
            guidelines.load(repo / "guidelines/labels.yaml"),
            params.load(repo / "params.yaml")["ingest"],
        )
        want = _reference_ingest(repo)
        assert (got.records.to_pylist(), got.rows.to_pylist(), got.quarantine) == want
    path.write_bytes(text.encode() + b"td-0009,\xff\xfe,x,y,0.5,correct_and_polite,\n")
    got = ingest.ingest(
        Path("data/raw"),
        guidelines.load(repo / "guidelines/labels.yaml"),
        params.load(repo / "params.yaml")["ingest"],
    )
    assert (got.records.to_pylist(), got.rows.to_pylist(), got.quarantine) == _reference_ingest(
        repo
    )


def test_shipped_sample_equals_the_row_at_a_time_ingest(repo: Path) -> None:
    shutil.rmtree(repo / "data" / "raw")
    shutil.copytree(PROJECT / "data" / "raw", repo / "data" / "raw")
    got = ingest.ingest(
        Path("data/raw"),
        guidelines.load(repo / "guidelines/labels.yaml"),
        params.load(repo / "params.yaml")["ingest"],
    )
    want_records, want_rows, want_quarantine = _reference_ingest(repo)
    assert len(want_records) > 700 and len(want_quarantine) > 10
    assert got.records.to_pylist() == want_records
    assert got.rows.to_pylist() == want_rows
    assert got.quarantine == want_quarantine


def test_dvc_reruns_ingest_for_every_module_its_fingerprint_covers() -> None:
    """An export's part is reused while its fingerprint holds, and the fingerprint hashes the
    code of ``ingest_cache.MODULES``; dvc must rerun the stage when any of them changes too."""
    import yaml

    from flywheel import ingest_cache

    stage = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]["ingest"]
    missing = [m for m in ingest_cache.MODULES if f"src/flywheel/{m}.py" not in stage["deps"]]
    assert missing == []
