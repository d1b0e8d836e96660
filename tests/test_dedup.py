from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel import dedup, guidelines, minhash, params, signature_store
from records_factory import record, table

G = guidelines.load()
P = params.load(Path(__file__).resolve().parents[1] / "params.yaml")["dedup"]
BASE = "Sorry about the delay with your order. It left our warehouse on Monday and the carrier shows delivery by Thursday."


def run(rows: list[dict[str, Any]], **overrides: Any) -> dict[str, dict[str, Any]]:
    out, _, _ = dedup.apply(table(rows), G, {**P, **overrides})
    return {r["id"]: r for r in out.to_pylist()}


def test_exact_duplicates_after_normalization_share_a_cluster() -> None:
    by = run(
        [
            record("s/1", response="It ships Monday."),
            record("s/2", response="  it SHIPS   monday. "),
            record("s/3", response="It ships Tuesday, and we are sorry for the wait."),
        ]
    )
    assert by["s/1"]["cluster_id"] == by["s/2"]["cluster_id"] != by["s/3"]["cluster_id"]
    assert by["s/2"]["duplicate_of"] == "s/1" and by["s/2"]["fate"] == "duplicate"
    assert by["s/2"]["fate_detail"] == "exact duplicate of s/1"
    assert by["s/1"]["duplicate_of"] is None and by["s/3"]["duplicate_of"] is None


def test_near_duplicates_cluster_and_keep_one() -> None:
    by = run(
        [
            record("s/1", response=BASE),
            record("s/2", response=BASE.replace("Sorry about", "So sorry about")),
            record(
                "s/3",
                response="Your refund was issued today and should reach your card within five business days.",
            ),
        ]
    )
    assert (
        by["s/2"]["fate_detail"] == "near duplicate of s/1"
        and by["s/2"]["cluster_id"] == by["s/1"]["cluster_id"]
    )
    assert by["s/3"]["duplicate_of"] is None


def test_representative_is_earliest_round_then_reviewed_then_riskier() -> None:
    by = run(
        [
            record("s/a", round=2, reviewed=True),
            record("s/b", round=1, error_category="ok"),
            record("s/c", round=1, error_category="hallucination"),
            record("s/d", round=1, reviewed=True, error_category="ok"),
        ]
    )
    assert {i: r["duplicate_of"] for i, r in by.items()} == {
        "s/a": "s/d",
        "s/b": "s/d",
        "s/c": "s/d",
        "s/d": None,
    }
    by = run([record("s/b", error_category="ok"), record("s/c", error_category="hallucination")])
    assert {i: r["duplicate_of"] for i, r in by.items()} == {"s/b": "s/c", "s/c": None}
    by = run(
        [record("s/b", error_category="ok"), record("s/c", error_category="hallucination")],
        representative=["earliest"],
    )
    assert {i: r["duplicate_of"] for i, r in by.items()} == {"s/b": None, "s/c": "s/b"}


def test_cluster_cap_keeps_several_members() -> None:
    by = run([record(f"s/{i}", response=BASE) for i in range(4)], cluster_cap=2)
    assert [by[f"s/{i}"]["duplicate_of"] for i in range(4)] == [None, None, "s/0", "s/0"]


def test_conflicting_labels_queue_the_representative() -> None:
    by = run(
        [
            record("s/1", label="correct_and_polite", label_status="agreed"),
            record("s/2", label="hallucinated_promise", label_status="agreed"),
        ]
    )
    assert (
        by["s/1"]["queue_reasons"] == ["conflicting_duplicates"]
        and by["s/2"]["queue_reasons"] is None
    )


def test_signatures_are_cached_by_text_and_refused_under_other_params(tmp_path: Path) -> None:
    cache = tmp_path / "minhash"
    rows = [record(f"s/{i}", response=f"{BASE} Ref {i * 7919}.") for i in range(20)]
    _, _, first = dedup.apply(table(rows), G, P, cache)
    assert first["signatures_computed"] == 20
    more = [*rows, record("s/new", response="A brand new reply.")]
    _, _, again = dedup.apply(table(more), G, P, cache)
    assert (again["signatures_computed"], again["signatures_reused"]) == (1, 20)
    # Append-only: the new key went into a second segment; the first was not rewritten.
    assert [p.name for p in signature_store.segments(cache)] == ["000000.arrow", "000001.arrow"]
    ids, sigs = signature_store.load_store(cache, dedup.minhash_params(P))
    assert len(ids) == 21 and sigs.shape == (21, P["num_perm"])
    fresh_out, _, _ = dedup.apply(table(more), G, P)
    cached_out, _, _ = dedup.apply(table(more), G, P, cache)
    assert cached_out.equals(fresh_out)
    _, _, other = dedup.apply(table(rows), G, {**P, "k": 4}, cache)
    assert other["signatures_computed"] == 20
    # Other parameters replaced the store with one segment of the new signatures.
    assert len(signature_store.segments(cache)) == 1


def test_signature_store_drops_stale_keys_and_survives_a_broken_segment(tmp_path: Path) -> None:
    cache = tmp_path / "minhash"
    old = [record(f"s/{i}", response=f"{BASE} Ref {i * 7919}.") for i in range(10)]
    new = [record(f"t/{i}", response=f"Another reply {i * 104729}.") for i in range(11)]
    dedup.apply(table(old), G, P, cache)
    # More than half of the stored keys are gone: the store is rewritten with the current ones.
    dedup.apply(table(new), G, P, cache)
    ids, _ = signature_store.load_store(cache, dedup.minhash_params(P))
    assert len(ids) == 11 and len(signature_store.segments(cache)) == 1
    signature_store.segments(cache)[0].write_bytes(b"not arrow")
    with pytest.raises(minhash.SignatureFileError):
        signature_store.load_store(cache, dedup.minhash_params(P))
    out, _, counts = dedup.apply(table(new), G, P, cache)
    assert counts["signatures_computed"] == 11
    assert out.equals(dedup.apply(table(new), G, P)[0])
    assert len(signature_store.load_store(cache, dedup.minhash_params(P))[0]) == 11


def test_pairs_kept_by_round_give_the_same_clusters_as_a_fresh_build(tmp_path: Path) -> None:
    cache = tmp_path / "minhash"
    old = [record(f"s/{i}", response=f"{BASE} Ref {i % 6}.") for i in range(12)]
    new = [record(f"s/n{i}", round=2, response=f"{BASE} Ref {i % 9}.") for i in range(9)]
    newer = [record(f"s/m{i}", round=3, response=f"{BASE} Case {i}.") for i in range(4)]
    dedup.apply(table(old), G, P, cache)
    _, _, counts = dedup.apply(table(old + new), G, P, cache)
    assert counts["pair_keys_reused"] == 6  # round 1's six distinct texts
    for rows in (old + new, old + new + newer):
        cached_out, cached_pairs, _ = dedup.apply(table(rows), G, P, cache)
        fresh_out, fresh_pairs, _ = dedup.apply(table(rows), G, P)
        assert cached_out.equals(fresh_out) and cached_pairs.equals(fresh_pairs)
    assert dedup.pairs_cache(cache).exists()
    # Other parameters do not reuse the pairs.
    _, _, other = dedup.apply(table(old + new), G, {**P, "threshold": 0.7}, cache)
    assert other["pair_keys_reused"] == 0


texts = st.lists(
    st.sampled_from(
        [BASE, BASE.upper(), BASE.replace("Monday", "Tuesday"), "Fine.", "Okay then.", "c"]
    ),
    min_size=1,
    max_size=15,
)


@settings(max_examples=40, deadline=None)
@given(texts, texts)
def test_adding_a_round_never_changes_an_earlier_one(first: list[str], later: list[str]) -> None:
    r1 = [record(f"s/a{i:02d}", response=t) for i, t in enumerate(first)]
    r2 = [record(f"s/b{i:02d}", response=t, round=2) for i, t in enumerate(later)]
    before = run(r1)
    after = run(r1 + r2)
    fields = ("cluster_id", "duplicate_of", "fate")
    assert {i: [after[i][f] for f in fields] for i in before} == {
        i: [r[f] for f in fields] for i, r in before.items()
    }
    # a later record that duplicates a kept earlier one is not added again
    kept_text = {
        minhash.normalize([r["response"]])[0].as_py() for r in before.values() if r["fate"] is None
    }
    for i, r in after.items():
        if i.startswith("s/b") and minhash.normalize([r["response"]])[0].as_py() in kept_text:
            assert r["fate"] == "duplicate"


@settings(max_examples=40, deadline=None)
@given(texts)
def test_dedup_is_idempotent(responses: list[str]) -> None:
    t = table([record(f"s/{i:03d}", response=r) for i, r in enumerate(responses)])
    once, _, _ = dedup.apply(t, G, P)
    twice, _, _ = dedup.apply(once, G, P)
    assert twice.equals(once)


def test_stage_pairs_reach_precision_and_recall_against_exact_jaccard() -> None:
    """The pairs the stage clusters on, against exact Jaccard on tests/test_minhash.py's corpus."""
    from test_minhash import banking77_texts, exact_pairs, perturbed_corpus, reference_shingles

    corpus = perturbed_corpus(banking77_texts("train")[:1500], 4500, seed=11)
    truth = set(
        exact_pairs([reference_shingles(t, P["shingle"], P["k"]) for t in corpus], P["threshold"])
    )
    mh = dedup.minhash_params(P)
    found = dedup.near_pairs(minhash.signatures(corpus, mh), pa.array(corpus), P["threshold"], mh)
    got = {(int(a), int(b)) for a, b in np.sort(found, axis=1)}
    hits = len(got & truth)
    assert len(truth) > 100
    assert hits / len(got) >= 0.95 and hits / len(truth) >= 0.95


def test_a_failed_signature_store_write_fails_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is written on a background thread; its error must still reach the caller."""

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(signature_store, "add_segment", broken)
    rows = [record(f"s/{i}", response=f"{BASE} Ref {i * 7919}.") for i in range(5)]
    with pytest.raises(OSError, match="disk full"):
        dedup.apply(table(rows), G, P, tmp_path / "minhash")


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(300, 400), min_size=3, max_size=4))
def test_one_lsh_pass_gives_the_candidates_of_the_round_by_round_search(
    seed: int, round_sizes: list[int]
) -> None:
    """With buckets above ``DEFAULT_MAX_BUCKET`` (many copies of two texts, and keys sharing
    only some bands with a third), across rounds: the same candidates either way."""
    from flywheel import dedup_pairs, lsh

    rng = np.random.default_rng(seed)
    n = sum(round_sizes)
    sigs = rng.integers(0, 2**32, size=(n, 128), dtype=np.uint64).astype(np.uint32)
    templates = rng.integers(0, 2**32, size=(3, 128), dtype=np.uint64).astype(np.uint32)
    spots = rng.permutation(n)  # 300 copies of each of two texts, 300 sharing 4 bands, in any round
    for t in (0, 1):
        sigs[spots[300 * t : 300 * (t + 1)]] = templates[t]
    sigs[spots[600:900], :32] = templates[2, :32]
    bounds = np.concatenate(([0], np.cumsum(round_sizes))).tolist()
    bands, rows = lsh.lsh_params(0.8, 128)
    assert len(lsh.small_bucket_pairs(sigs, bands, rows)[1]) >= 900  # buckets above the cap
    one_pass = dedup_pairs._rounds_pairs(sigs, bounds, bands, rows)
    by_round = np.concatenate(
        [dedup_pairs._round_pairs(sigs, a, b, bands, rows) for a, b in itertools.pairwise(bounds)]
    )
    expected = lsh._unique_pairs(by_round[:, 0], by_round[:, 1], n)
    assert np.array_equal(one_pass, expected)


def test_a_review_does_not_rename_a_cluster() -> None:
    """A cluster's id decides its split, so it must not change when a review makes another
    member the representative: the records would move between train and eval."""
    near = BASE.replace("Sorry about", "So sorry about")
    rows = [record("s/1", response=BASE), record("s/2", response=near)]
    before = run(rows)
    assert before["s/2"]["duplicate_of"] == "s/1"
    after = run([rows[0], record("s/2", response=near, reviewed=True)])
    assert after["s/1"]["duplicate_of"] == "s/2"  # the reviewed member is kept now
    assert after["s/1"]["cluster_id"] == after["s/2"]["cluster_id"] == before["s/1"]["cluster_id"]
