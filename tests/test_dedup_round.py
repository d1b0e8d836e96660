"""flywheel.dedup_round: a new round decided against the kept state of the earlier ones leaves
the bytes that deciding every record leaves, and the state is used only when it applies."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import fresh_repo, manifest, row, write_export
from flywheel import dedup, dedup_round, dedup_state, dedup_texts, pipeline, store

OUTPUTS = (
    "data/interim/dedup",
    "data/interim/pairs.parquet",
    "metrics/dedup.json",
    "data/cache/minhash",
    "data/cache/minhash_pairs.parquet",
    "data/cache/dedup",
)
BEFORE = ("ingest", "label", "bucket")
LABELS = ("correct_and_polite", "partially_correct", "hallucinated_promise")
# Replies built from a few long sentences: records sharing most of them are near-duplicates
# at the default threshold (word 3-grams, Jaccard 0.8), equal ones exact duplicates.
SENTENCES = [
    "Your parcel left our warehouse on Monday and the carrier expects to deliver it by Thursday.",
    "You can follow every step of the delivery with the tracking link in your confirmation email.",
    "If it has not arrived by Friday evening, reply to this message and we will send a new one.",
    "We are sorry for the wait and have added a voucher for your next order to your account.",
    "Our support team is available every day from eight in the morning to eight in the evening.",
    "Refunds reach the original payment method within five working days of our confirmation.",
]


def files(root: Path) -> dict[str, object]:
    """Every output's bytes; the state as loaded (its segments differ: a new round appends
    one, a build from nothing writes one)."""
    out: dict[str, object] = {}
    for name in OUTPUTS:
        path = root / name
        if name == "data/cache/dedup":
            state = dedup_state.load(path)
            assert state is not None
            tables = (state.key_table(), state.rep_table(), state.cluster_table())
            out[name] = ([t.to_pydict() for t in tables], state.meta)
            continue
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                out[f.relative_to(root).as_posix()] = f.read_bytes()
    return out


def run(*stages: str) -> None:
    for stage in stages:
        pipeline.run_stage(stage)


def reply(choice: list[int], tail: str) -> str:
    return " ".join(SENTENCES[i] for i in choice) + tail


def export(round_: int, rows: list[dict[str, object]], name: str = "") -> None:
    write_export(Path.cwd(), manifest(f"r{round_}-thumbs{name}", round=round_), rows)


def compare_with_deciding_everything(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Run dedup on ``root`` (which must take the kept state) and on a copy without the state;
    the outputs must be equal byte for byte."""
    full = root.parent / (root.name + "-full")
    shutil.copytree(root, full)
    shutil.rmtree(full / "data/cache/dedup")
    with caplog.at_level(logging.INFO, logger="flywheel.dedup"):
        caplog.clear()
        run("dedup")
        assert any("new records against" in m for m in caplog.messages), caplog.messages
    os.chdir(full)
    try:
        run("dedup")
    finally:
        os.chdir(root)
    assert files(root) == files(full)
    shutil.rmtree(full)


@st.composite
def rounds(draw: st.DrawFn) -> list[list[dict[str, object]]]:
    """Two to four rounds of records whose replies repeat and overlap."""
    out = []
    n = 0
    for _ in range(draw(st.integers(2, 4))):
        batch = []
        for _ in range(draw(st.integers(1, 8))):
            choice = draw(st.lists(st.integers(0, len(SENTENCES) - 1), min_size=3, max_size=5))
            tail = draw(st.sampled_from(["", " Thanks!", " Kind regards, Anna."]))
            a = draw(st.sampled_from(LABELS))
            b = draw(st.sampled_from([a, a, *LABELS]))
            batch.append(row(n, a, b, prompt="Where is my parcel?", response=reply(choice, tail)))
            n += 1
        out.append(batch)
    return out


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=rounds(), cap=st.sampled_from([1, 2]))
def test_a_new_round_gives_the_bytes_of_deciding_every_record(
    data: list[list[dict[str, object]]], cap: int, caplog: pytest.LogCaptureFixture
) -> None:
    with fresh_repo() as root:
        params = yaml.safe_load(Path("params.yaml").read_text())
        params["dedup"]["cluster_cap"] = cap
        Path("params.yaml").write_text(yaml.safe_dump(params))
        for r, batch in enumerate(data[:-1], start=1):
            export(r, batch)
        run(*BEFORE, "dedup")
        export(len(data), data[-1])
        run(*BEFORE)
        compare_with_deciding_everything(root, caplog)


@pytest.fixture
def two_rounds(repo: Path) -> Path:
    """Round 1 built; round 2 holds an exact duplicate of a round-1 record with another label."""
    text = reply([0, 1, 2], "")
    export(1, [row(0, prompt="Where is it?", response=text), row(1)])
    run(*BEFORE, "dedup")
    export(
        2, [row(2, "partially_correct", "partially_correct", prompt="Where is it?", response=text)]
    )
    run(*BEFORE)
    return repo


def test_a_conflicting_new_member_queues_the_earlier_representative(
    two_rounds: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = store.patch_path(
        two_rounds / "data/interim/dedup", store.partitions(two_rounds / "data/interim/ingest")[0]
    )
    before = first.read_bytes()
    compare_with_deciding_everything(two_rounds, caplog)
    assert first.read_bytes() != before  # the earlier representative's file was written again
    table = store.load(pipeline.LAYERS["queue"], ["id", "queue_reasons", "fate"])
    reasons = table.column("queue_reasons").to_pylist()
    fates = table.column("fate").to_pylist()
    marked = [i for i, r in enumerate(reasons) if r and "conflicting_duplicates" in r]
    assert [table.column("id")[i].as_py() for i in marked] == [table.column("id")[0].as_py()]
    assert fates.count("duplicate") == 1


@pytest.mark.parametrize("change", ["earlier round", "changed earlier partition", "params"])
def test_the_state_is_not_used_when_it_does_not_apply(
    two_rounds: Path, caplog: pytest.LogCaptureFixture, change: str
) -> None:
    if change == "earlier round":
        export(1, [row(7, prompt="Late", response=reply([3, 4, 5], ""))], name="-late")
    elif change == "changed earlier partition":
        export(1, [row(0), row(1), row(8)])
    else:
        params = yaml.safe_load(Path("params.yaml").read_text())
        params["dedup"]["representative"] = ["earliest"]
        Path("params.yaml").write_text(yaml.safe_dump(params))
    run(*BEFORE)
    full = two_rounds.parent / (two_rounds.name + "-full")
    shutil.copytree(two_rounds, full)
    shutil.rmtree(full / "data/cache/dedup")
    with caplog.at_level(logging.INFO, logger="flywheel.dedup"):
        run("dedup")
    assert any("deciding every record" in m for m in caplog.messages), caplog.messages
    os.chdir(full)
    run("dedup")
    os.chdir(two_rounds)
    assert files(two_rounds) == files(full)


@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.one_of(st.none(), st.sampled_from(["b", "a", "ok", "Z"]))),
        max_size=40,
    )
)
def test_cluster_labels_are_the_smallest_label_and_whether_there_are_two(
    members: list[tuple[int, str | None]],
) -> None:
    n = 7
    cluster = np.array([c for c, _ in members], dtype=np.int64)
    labels = pa.chunked_array([pa.array([lab for _, lab in members], pa.string())])
    smallest, conflicted = dedup_state.cluster_labels(cluster, labels, n)
    for c in range(n):
        found = {lab for k, lab in members if k == c and lab is not None}
        assert smallest[c].as_py() == (min(found) if found else None)
        assert conflicted[c] == (len(found) > 1)


def test_a_new_round_without_records_keeps_the_state(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new export whose every row is quarantined adds an empty partition."""
    export(1, [row(0), row(1, prompt="Hi", response=reply([0, 1, 2], ""))])
    run(*BEFORE, "dedup")
    write_export(repo, manifest("r2-broken", round=2), ['{"id": "x", broken'])
    run(*BEFORE)
    compare_with_deciding_everything(repo, caplog)


def test_a_round_appends_state_segments_and_leaves_the_earlier_ones(
    two_rounds: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = two_rounds / "data/cache/dedup"
    before = {p.name: p.read_bytes() for p in folder.glob("*-*.arrow")}
    assert sorted(before) == ["keys-000000.arrow", "reps-000000.arrow"]
    compare_with_deciding_everything(two_rounds, caplog)
    # round 2 repeats a round-1 text: no new key or cluster, so no new segment; only the
    # clusters file (sizes, labels, conflicts) is written again
    assert {p.name: p.read_bytes() for p in folder.glob("*-*.arrow")} == before
    export(3, [row(5, prompt="New", response=reply([3, 4, 5], ""))])
    run(*BEFORE, "dedup")
    after = {p.name: p.read_bytes() for p in folder.glob("*-*.arrow")}
    assert sorted(after) == [
        "keys-000000.arrow",
        "keys-000001.arrow",
        "reps-000000.arrow",
        "reps-000001.arrow",
    ]
    assert all(after[name] == data for name, data in before.items())


@pytest.mark.parametrize("tear", ["missing segment", "short segment", "no clusters file"])
def test_a_torn_state_is_not_used(
    two_rounds: Path, caplog: pytest.LogCaptureFixture, tear: str
) -> None:
    folder = two_rounds / "data/cache/dedup"
    if tear == "missing segment":
        (folder / "reps-000000.arrow").unlink()
    elif tear == "short segment":
        state = dedup_state.load(folder)
        assert state is not None
        table = state.key_table().slice(1)
        path = str(folder / "keys-000000.arrow")
        with pa.OSFile(path, "wb") as f, pa.ipc.new_file(f, table.schema) as writer:
            writer.write_table(table)
    else:
        (folder / "clusters.arrow").unlink()
    assert dedup_state.load(folder) is None
    full = two_rounds.parent / (two_rounds.name + "-full")
    shutil.copytree(two_rounds, full)
    with caplog.at_level(logging.INFO, logger="flywheel.dedup"):
        run("dedup")
    assert any("no usable state" in m for m in caplog.messages), caplog.messages
    os.chdir(full)
    shutil.rmtree(full / "data/cache/dedup")
    run("dedup")
    os.chdir(two_rounds)
    assert files(two_rounds) == files(full)


def test_state_segments_are_merged_past_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dedup_state, "MAX_SEGMENTS", 3)

    def state(n: int, segments: dedup_state.Segments) -> dedup_state.State:
        ints = np.arange(n, dtype=np.int64)
        return dedup_state.State(
            keys=pa.array([f"k{i}" for i in range(n)]),
            cluster=ints,
            attached=np.zeros(n, dtype=bool),
            first_row=ints,
            kept_id=pa.array([f"id{i}" for i in range(n)]),
            rep_row=ints,
            rep_id=pa.array([f"id{i}" for i in range(n)]),
            rep_key=ints,
            size=np.ones(n, dtype=np.int64),
            label=pa.array(["a" if i % 2 else None for i in range(n)], pa.string()),
            conflicted=np.zeros(n, dtype=bool),
            meta={"n": n},
            segments=segments,
        )

    segments: dedup_state.Segments = {}
    for n in range(1, 8):
        dedup_state.save(tmp_path, state(n, segments))
        loaded = dedup_state.load(tmp_path)
        assert loaded is not None
        assert loaded.key_table().equals(state(n, {}).key_table())
        assert loaded.cluster_table().equals(state(n, {}).cluster_table())
        assert loaded.meta == {"n": n}
        assert len(loaded.segments["keys"]) <= 3
        assert len(list(tmp_path.glob("keys-*.arrow"))) == len(loaded.segments["keys"])
        segments = loaded.segments


def test_earlier_texts_for_the_exact_check_come_from_the_kept_texts(
    repo: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new key near the threshold with an earlier key needs the earlier text: it comes from
    ``flywheel.dedup_texts`` (kept when the earlier round was signed), not from the records;
    without the kept texts it is read from the records, with the same bytes."""
    base = reply([0, 1, 2, 3, 4], "")
    export(1, [row(0, response=base), row(1, response=reply([5, 4, 3], ""))])
    run(*BEFORE, "dedup")
    assert list((repo / ".flywheel" / "dedup-texts").glob("*.arrow"))
    # Round 2: the same reply with its last sentence swapped, near the threshold.
    export(2, [row(2, response=reply([0, 1, 2, 3, 5], ""))])
    run(*BEFORE)
    later = repo.parent / (repo.name + "-later")
    shutil.copytree(repo, later)
    read: list[int] = []
    real = dedup_round._Round.texts

    def counting(self: dedup_round._Round, rows: np.ndarray) -> pa.Array:
        read.append(len(rows))
        return real(self, rows)

    monkeypatch.setattr(dedup_round._Round, "texts", counting)
    compare_with_deciding_everything(repo, caplog)
    assert read == [1]  # the new key's text only: the earlier one was kept
    os.chdir(later)
    shutil.rmtree(later / ".flywheel" / "dedup-texts")
    read.clear()
    compare_with_deciding_everything(later, caplog)
    assert read == [1, 1]  # the new key's text, then the earlier key's, from the records
    found, _ = dedup_texts.lookup(
        pa.array(
            [
                dedup.dedup_key(r, ["prompt", "response"])
                for r in [{"prompt": row(0)["prompt"], "response": base}]
            ]
        )
    )
    assert found.all()  # kept from now on
    os.chdir(repo)
    assert files(repo) == files(later)
