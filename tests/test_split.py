from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel import guidelines, split
from records_factory import record, table

G = guidelines.load()


def labelled(
    i: int, cluster: int, label: str = "correct_and_polite", rnd: int = 1
) -> dict[str, object]:
    return record(
        f"s/{i:04d}",
        label=label,
        label_status="agreed",
        error_category=G.category_of(label),
        cluster_id=f"c-{cluster}",
        round=rnd,
    )


def assignments(rows: list[dict[str, object]], fraction: float = 0.3) -> dict[str, str | None]:
    out = split.apply(table(rows), G, seed=7, eval_fraction=fraction)
    return {r["id"]: r["split"] for r in out.to_pylist()}


clusters = st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(clusters, clusters)
def test_splits_are_sticky_when_a_round_adds_records(first: list[int], later: list[int]) -> None:
    round1 = [labelled(i, c) for i, c in enumerate(first)]
    round2 = [labelled(1000 + i, c, rnd=2) for i, c in enumerate(later)]
    before = assignments(round1)
    after = assignments(round1 + round2)
    assert {k: after[k] for k in before} == before


@settings(max_examples=60, deadline=None)
@given(clusters)
def test_no_cluster_straddles_train_and_eval(cs: list[int]) -> None:
    rows = [labelled(i, c) for i, c in enumerate(cs)]
    out = split.apply(table(rows), G, seed=7, eval_fraction=0.5)
    assert split.leakage(out) == 0
    seen: dict[str, set[str]] = {}
    for r in out.to_pylist():
        seen.setdefault(r["cluster_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in seen.values())


def test_eval_share_is_close_to_the_fraction_on_many_clusters() -> None:
    got = assignments([labelled(i, i) for i in range(4000)], fraction=0.2)
    share = sum(v == "eval" for v in got.values()) / len(got)
    assert 0.18 < share < 0.22


def test_exclude_action_and_held_records_are_not_split() -> None:
    rows = [labelled(1, 1, label="unusable"), {**labelled(2, 2), "fate": "queued"}, labelled(3, 3)]
    out = {r["id"]: r for r in split.apply(table(rows), G, seed=7, eval_fraction=0.2).to_pylist()}
    assert out["s/0001"]["fate"] == "excluded" and out["s/0001"]["split"] is None
    assert out["s/0002"]["fate"] == "queued" and out["s/0002"]["split"] is None
    assert (
        out["s/0003"]["fate"] in {"train", "eval"}
        and out["s/0003"]["split"] == out["s/0003"]["fate"]
    )
