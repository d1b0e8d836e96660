"""Stage ``dedup``: exact and near-duplicate clusters, within a round and against earlier rounds.

Records are compared on the normalized text of ``dedup.fields``. Exact duplicates share a key
(a hash of that text); near-duplicates are keys whose MinHash-estimated Jaccard similarity of
shingle sets reaches ``dedup.threshold`` (``flywheel.minhash``; LSH bands and rows derived from
the threshold). Signatures are kept per key in ``data/cache/minhash/``, append-only segments
with the parameters that make them comparable (``flywheel.signature_store``), so a rebuild
computes them only for new text, and reads texts only for the keys it signs or checks exactly.

Clusters are built round by round, so adding a round never changes an earlier one:

1. keys are visited in the order of the round that first delivered them;
2. a new key with a near-duplicate in an earlier round joins that round's cluster (the earliest,
   when it touches several, and then none of its records is kept, so no kept record can sit
   beside a near-duplicate in another cluster, and so in another split);
3. the remaining new keys form clusters among themselves (connected components);
4. each cluster keeps up to ``dedup.cluster_cap`` records, filled in round order and, within a
   round, by ``dedup.representative`` (``reviewed`` first, higher ``risk``, ``earliest``); the
   first kept is the representative, the others that are not kept get ``duplicate_of`` it and
   the fate ``duplicate``.

A cluster whose members carry different final labels queues its representative with the reason
``conflicting_duplicates``. The verified near-duplicate pairs are written for the split stage's
leakage check.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import (
    dedup_pairs,
    dedup_round,
    dedup_sign,
    dedup_state,
    dedup_texts,
    minhash,
    parts,
    records,
    store,
)
from flywheel.errors import ConfigError
from flywheel.guidelines import Guidelines
from flywheel.ingest_text import normalize
from flywheel.io import write_json, write_parquet

log = logging.getLogger(__name__)
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
RISK_ORDER = {"high": 0, "medium": 1, "low": 2, "none": 3}
RULES = ("reviewed", "risk", "earliest")
PAIRS_SCHEMA = pa.schema([("a", pa.string()), ("b", pa.string())])


def dedup_key(row: dict[str, Any], fields: list[str]) -> str:
    """The exact-duplicate key of one record (the rule ``keys`` vectorizes)."""
    joined = "\x1f".join(normalize(row[f]) for f in fields)
    return hashlib.blake2b(joined.encode("utf-8"), digest_size=16).hexdigest()


def keys(table: pa.Table, fields: list[str], texts: pa.Table | None = None) -> pa.ChunkedArray:
    """``dedup_key`` of every record; ingest's content_hash already is it for prompt + response.
    ``texts`` holds the ``fields`` columns when ``table`` does not."""
    if fields == ["prompt", "response"]:
        return table.column("content_hash")
    source = table if texts is None else texts
    values = zip(*(source.column(f).to_pylist() for f in fields), strict=True)
    return pa.chunked_array(
        [pa.array([dedup_key(dict(zip(fields, t, strict=True)), fields) for t in values])]
    )


def minhash_params(params: dict[str, Any]) -> minhash.MinHashParams:
    try:
        return minhash.MinHashParams(
            seed=int(params["seed"]),
            num_perm=int(params["num_perm"]),
            shingle=params["shingle"],
            k=int(params["k"]),
        )
    except ValueError as exc:
        raise ConfigError(f"params.yaml: dedup: {exc}") from None


def near_pairs(
    sigs: npt.NDArray[np.uint32], texts: pa.Array, threshold: float, mh: minhash.MinHashParams
) -> Ints:
    """Verified near-duplicate pairs of keys all delivered in one round: what the stage finds
    (``flywheel.dedup_pairs``). Candidates whose estimated Jaccard is within a few standard
    errors of the threshold are decided by exact Jaccard of their shingle sets: the estimate
    alone measured 0.85 precision and recall on tests/test_minhash.py's corpus, the exact check
    1.0 and 0.99."""
    n = len(sigs)
    keys = pa.array([str(i) for i in range(n)], pa.string())
    none = dedup_sign.Signed(sigs, np.zeros(0, np.int64), pa.array([], pa.string()))
    shingles_of = none.shingles_of(lambda k: texts.take(pa.array(k)), mh)
    pairs, _ = dedup_pairs.find(
        sigs, np.zeros(n, dtype=np.int64), keys, threshold, mh, shingles_of, None
    )
    return pairs


def pairs_cache(signatures: Path) -> Path:
    """Where the verified pairs are kept, beside the signatures (``flywheel.dedup_pairs``)."""
    return signatures.with_name(signatures.name + "_pairs.parquet")


def cluster_keys(
    first_round: Ints, pairs: Ints, known: tuple[Ints, Bools] | None = None
) -> tuple[Ints, Bools]:
    """Cluster ordinal of every key (keys indexed in first-delivery order), round by round.

    Returns ``(cluster, attached)``: the ordinal of each key's cluster (clusters numbered in the
    order they were founded) and whether the key joined an earlier round's cluster. ``known``:
    the clusters and attached flags of the leading keys, from an earlier build of their rounds
    (``flywheel.dedup_round``); only the rounds of the keys after them are built, and ``pairs``
    need only hold the pairs that touch those keys.
    """
    n = len(first_round)
    cluster = np.full(n, -1, dtype=np.int64)
    attached = np.zeros(n, dtype=bool)
    done = 0
    if known is not None:
        done = len(known[0])
        cluster[:done], attached[:done] = known
    next_id = int(cluster.max(initial=-1)) + 1
    for rnd in np.unique(first_round[done:]):
        new = first_round == rnd
        new[:done] = False
        if len(pairs):
            a, b = pairs[:, 0], pairs[:, 1]
            cross_a = new[a] & (cluster[b] >= 0)
            cross_b = new[b] & (cluster[a] >= 0)
            target = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(target, a[cross_a], cluster[b[cross_a]])
            np.minimum.at(target, b[cross_b], cluster[a[cross_b]])
            joined = new & (target < np.iinfo(np.int64).max)
            cluster[joined] = target[joined]
            attached |= joined
            free = new & ~joined
            inner = pairs[free[a] & free[b]]
        else:
            free, inner = new, pairs[:0]
        roots = minhash.clusters(n, inner)
        founders = np.flatnonzero(free & (roots == np.arange(n)))
        ordinal = np.full(n, -1, dtype=np.int64)
        ordinal[founders] = np.arange(next_id, next_id + len(founders))
        cluster[free] = ordinal[roots[free]]
        next_id += len(founders)
    return cluster, attached


def joined_texts(texts: pa.Table, fields: Sequence[str]) -> pa.Array:
    """The ``fields`` of each record joined by newlines: the text a key is signed and
    shingled from."""
    joined = pc.binary_join_element_wise(*(texts.column(f) for f in fields), "\n")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def apply(
    table: pa.Table,
    guidelines: Guidelines,
    params: dict[str, Any],
    cache: Path | None = None,
    texts_at: Callable[[Ints], pa.Table] | None = None,
) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """Cluster ``table``; returns the records, the near-duplicate pairs (ids) and counts.

    ``texts_at(rows)`` gives the ``dedup.fields`` columns of those rows when ``table`` lacks
    them: the stage reads texts only for the keys it signs or checks exactly."""
    built = build(table, guidelines, params, cache, texts_at)
    return built.records, built.pairs, built.counts


@dataclass
class Built:
    records: pa.Table
    pairs: pa.Table  # near-duplicate pairs, as ids
    counts: dict[str, int]
    state: dedup_state.State  # what the next round needs (``flywheel.dedup_round``)


def build(
    table: pa.Table,
    guidelines: Guidelines,
    params: dict[str, Any],
    cache: Path | None = None,
    texts_at: Callable[[Ints], pa.Table] | None = None,
) -> Built:
    """``apply``, with the state a later round builds on."""
    n = table.num_rows
    fields = list(params["fields"])
    if texts_at is None:
        texts_at = lambda rows: table.select(fields).take(pa.array(rows))  # noqa: E731
    source = None if fields == ["prompt", "response"] else texts_at(np.arange(n))
    encoded = pc.dictionary_encode(keys(table, fields, source)).combine_chunks()
    del source
    key_of = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    key_hex = encoded.dictionary
    rounds = table.column("round").to_numpy(zero_copy_only=False).astype(np.int64)
    first_round = np.full(len(key_hex), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_round, key_of, rounds)
    first_row = np.full(len(key_hex), n, dtype=np.int64)
    np.minimum.at(first_row, key_of, np.arange(n))
    # Keys in first-delivery order (round, then table order): cluster ordinals follow it.
    order = np.lexsort((first_row, first_round))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    ordered_keys = key_hex.take(pa.array(order))

    def texts_of(ordinals: Ints) -> pa.Array:
        return joined_texts(texts_at(first_row[order[ordinals]]), fields)

    mh = minhash_params(params)
    signed = dedup_sign.sign(texts_of, ordered_keys, mh, cache)
    sigs, computed = signed.sigs, len(signed.computed)
    keeping = None
    if cache is not None and computed:  # the texts signed, for later rounds' exact check
        keeping = dedup_sign.in_background(
            functools.partial(
                dedup_texts.add,
                ordered_keys.take(pa.array(signed.computed)),
                signed.texts,
                replace=computed == len(ordered_keys),
            )
        )
    pairs, pair_keys_reused = dedup_pairs.find(
        sigs,
        first_round[order],
        ordered_keys,
        float(params["threshold"]),
        mh,
        signed.shingles_of(texts_of, mh),
        None if cache is None else pairs_cache(cache),
    )
    saving = signed.saving  # not the texts: those go with ``signed``
    del signed
    cluster, attached = cluster_keys(first_round[order], pairs)
    rec_cluster = cluster[rank[key_of]]
    rec_attached = attached[rank[key_of]]

    keep_rank = _fill_order(
        table, guidelines, rec_cluster, list(params.get("representative", RULES))
    )
    cap = int(params.get("cluster_cap", 1))
    kept = (keep_rank < cap) & ~rec_attached
    rep_pos = np.full(int(rec_cluster.max(initial=-1)) + 1, -1, dtype=np.int64)
    founders = keep_rank == 0
    rep_pos[rec_cluster[founders]] = np.flatnonzero(founders)
    ids = table.column("id").combine_chunks()
    id_arr = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
    rep_ids = id_arr[rep_pos[rec_cluster]]
    dup = ~kept
    exact = np.zeros(n, dtype=bool)
    exact[dup] = key_of[dup] == key_of[rep_pos[rec_cluster[dup]]]
    fate, detail = duplicate_fates(table, dup, exact, rep_ids)
    names = cluster_names(ordered_keys, _first_keys(cluster))
    label, conflicted = dedup_state.cluster_labels(rec_cluster, table.column("label"), len(rep_pos))
    reasons = table.column("queue_reasons").to_pylist()
    add_conflict(reasons, np.flatnonzero(founders & conflicted[rec_cluster]).tolist())
    out = records.replace(
        table,
        cluster_id=names.take(pa.array(rec_cluster)),
        duplicate_of=pa.array(np.where(dup, rep_ids, None), pa.string()),
        fate=fate,
        fate_detail=detail,
        queue_reasons=pa.array(reasons, pa.list_(pa.string())),
    )
    first_kept = _kept_record_of_key(kept, key_of, len(key_hex))
    pair_ids = pa.table(
        {
            "a": pa.array(
                id_arr[first_kept[order[pairs[:, 0]]]] if len(pairs) else [], pa.string()
            ),
            "b": pa.array(
                id_arr[first_kept[order[pairs[:, 1]]]] if len(pairs) else [], pa.string()
            ),
        },
        schema=PAIRS_SCHEMA,
    )
    counts = {
        "keys": len(key_hex),
        "near_duplicate_pairs": len(pairs),
        "signatures_computed": computed,
        "signatures_reused": len(key_hex) - computed,
        "pair_keys_reused": pair_keys_reused,
        "exact_duplicates": int((dup & exact).sum()),
        "near_duplicates": int((dup & ~exact).sum()),
    }
    state = dedup_state.State(
        keys=ordered_keys,
        cluster=cluster,
        attached=attached,
        first_row=first_row[order],
        kept_id=ids.take(pa.array(first_kept[order])),
        rep_row=rep_pos,
        rep_id=ids.take(pa.array(rep_pos)),
        rep_key=rank[key_of[rep_pos]],
        size=np.bincount(rec_cluster, minlength=len(rep_pos)),
        label=label,
        conflicted=conflicted,
    )
    for pending in (saving, keeping):
        if pending is not None:
            pending.result()
    return Built(records.typed(out), pair_ids, counts, state)


def _first_keys(cluster: Ints) -> Ints:
    """Each cluster's first key (in first-delivery order, as ``cluster`` is indexed). It names
    the cluster: it stays the same when a later round joins the cluster or a review makes
    another member the representative, so the cluster's split stays too."""
    first = np.full(int(cluster.max(initial=-1)) + 1, len(cluster), dtype=np.int64)
    np.minimum.at(first, cluster, np.arange(len(cluster)))
    return first


def _fill_order(table: pa.Table, guidelines: Guidelines, cluster: Ints, rules: list[str]) -> Ints:
    """Each record's position in its cluster's fill order: round first, then ``rules``, then id."""
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise ConfigError(
            f"params.yaml: dedup.representative has unknown rule {unknown[0]!r}; rules are {', '.join(RULES)}."
        )
    cats = table.column("error_category").to_pylist()
    risk_of = {c: RISK_ORDER.get(guidelines.risk_of(c), 1) for c in set(cats)}
    columns: dict[str, Any] = {
        "cluster": cluster,
        "round": table.column("round").to_numpy(zero_copy_only=False),
        "reviewed": ~np.asarray(
            table.column("reviewed").to_numpy(zero_copy_only=False), dtype=bool
        ),
        "risk": np.array([risk_of[c] for c in cats], dtype=np.int64),
        "earliest": pc.binary_join_element_wise(
            table.column("export_id"), table.column("origin"), "\x1f"
        ),
        "id": table.column("id"),
    }
    sort_keys = (
        [("cluster", "ascending"), ("round", "ascending")]
        + [(r, "ascending") for r in rules]
        + [("id", "ascending")]
    )
    order = pc.sort_indices(pa.table(columns), sort_keys=sort_keys).to_numpy()
    sorted_cluster = cluster[order]
    start = np.r_[0, np.flatnonzero(np.diff(sorted_cluster)) + 1]
    group_start = np.repeat(start, np.diff(np.r_[start, len(order)]))
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order)) - group_start
    return position


CONFLICT = "conflicting_duplicates"


def add_conflict(reasons: list[list[str] | None], rows: Iterable[int]) -> int:
    """Add ``CONFLICT`` to the queue reasons at ``rows`` (in place) where it is missing;
    returns how many it was added to."""
    added = 0
    for row in rows:
        if CONFLICT not in (reasons[row] or []):
            reasons[row] = [*(reasons[row] or []), CONFLICT]
            added += 1
    return added


def duplicate_fates(
    table: pa.Table, dup: Bools, exact: Bools, rep_ids: npt.NDArray[np.object_]
) -> tuple[pa.Array, pa.Array]:
    """``fate`` and ``fate_detail`` with the ``dup`` records made duplicates of the record
    ``rep_ids`` names (``exact``: of the same key)."""
    fate = np.asarray(table.column("fate").to_numpy(zero_copy_only=False), dtype=object)
    detail = np.asarray(table.column("fate_detail").to_numpy(zero_copy_only=False), dtype=object)
    fate[dup] = "duplicate"
    kind = np.where(exact[dup], "exact duplicate of ", "near duplicate of ")
    detail[dup] = kind + rep_ids[dup].astype(str)
    return pa.array(fate, pa.string()), pa.array(detail, pa.string())


def cluster_names(keys: pa.Array, first_keys: Ints) -> pa.Array:
    """A cluster's id: "c-" and the first 16 hex digits of its first key (``_first_keys``)."""
    firsts = pc.utf8_slice_codeunits(keys.take(pa.array(first_keys)), 0, 16)
    return pc.binary_join_element_wise("c-", firsts, "")


def _kept_record_of_key(kept: npt.NDArray[np.bool_], key_of: Ints, n_keys: int) -> Ints:
    """For each key, a kept record of it if any (the first), else its first record."""
    first_any = np.full(n_keys, len(kept), dtype=np.int64)
    np.minimum.at(first_any, key_of, np.arange(len(kept)))
    first_kept = np.full(n_keys, len(kept), dtype=np.int64)
    np.minimum.at(first_kept, key_of[kept], np.flatnonzero(kept))
    return np.where(first_kept < len(kept), first_kept, first_any)


@dataclass(frozen=True)
class Outputs:
    records: Path = Path("data/interim/dedup")  # one patch file per partition
    pairs: Path = Path("data/interim/pairs.parquet")
    cache: Path = Path("data/cache/minhash")  # flywheel.signature_store segments
    state: Path = Path("data/cache/dedup")  # flywheel.dedup_state
    metrics: Path = Path("metrics/dedup.json")


COLUMNS = ("cluster_id", "duplicate_of", "fate", "fate_detail", "queue_reasons")
READS = (
    "id",
    "round",
    "export_id",
    "origin",
    "content_hash",
    "label",
    "reviewed",
    "error_category",
    "fate",
    "fate_detail",
    "queue_reasons",
)


def run(
    layers: Sequence[Path],
    guidelines: Guidelines,
    params: dict[str, Any],
    outputs: Outputs = Outputs(),
) -> dict[str, Any]:
    """The stage: a new round against the state of the earlier ones when it applies
    (``flywheel.dedup_round``), else every record; both give the same outputs."""
    minhash.warm_up(minhash_params(params), float(params["threshold"]))  # while inputs load
    metrics = dedup_round.extend(layers, guidelines, params, outputs)
    if metrics is not None:
        return metrics
    fields = list(params["fields"])
    table = store.load(layers, list(READS))
    built = build(
        table,
        guidelines,
        params,
        outputs.cache,
        texts_at=lambda rows: store.take(layers, fields, rows),
    )
    table, counts = built.records, built.counts
    # Cache hits depend on what earlier builds left, not on the inputs: logged, not a metric,
    # so that the same inputs give byte-identical metrics.
    computed, reused = counts.pop("signatures_computed"), counts.pop("signatures_reused")
    log.info("dedup: %d signatures computed, %d reused from %s", computed, reused, outputs.cache)
    log.info("dedup: pairs of %d keys reused from earlier rounds", counts.pop("pair_keys_reused"))
    sizes = table.group_by("cluster_id").aggregate([("id", "count")]).column("id_count").to_numpy()
    reasons = table.column("queue_reasons").to_pylist()
    metrics = {
        "records": table.num_rows,
        "duplicates": counts["exact_duplicates"] + counts["near_duplicates"],
        **counts,
        "clusters": len(sizes),
        "clusters_with_duplicates": int((sizes > 1).sum()),
        "largest_cluster": int(sizes.max(initial=0)),
        "conflicting_clusters": sum(1 for r in reasons if r and CONFLICT in r),
    }
    files = store.partitions(layers[0])
    parts.write_patches(outputs.records, files, table, COLUMNS)
    write_parquet(outputs.pairs, built.pairs)
    write_json(outputs.metrics, metrics)
    rounds = table.column("round")
    dedup_round.save_state(
        layers,
        files,
        guidelines,
        params,
        outputs,
        built.state,
        metrics,
        int(pc.max(rounds).as_py()) if len(rounds) else -1,
    )
    return metrics
