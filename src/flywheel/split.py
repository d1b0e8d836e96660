"""Stage ``split``: representative sampling, then train/eval by near-duplicate cluster.

A record's split is a pure function of its cluster id and ``split.seed``: the cluster's hash,
read as a number in [0, 1), below ``split.eval_fraction`` means eval. So a whole cluster always
lands in one split, and a record never changes split when later rounds, reviews or reorderings
arrive: no state from earlier builds is needed, which a fresh clone does not have. Stratification
by error category holds in expectation; ``metrics/split.json`` reports the eval share of every
category so a skew is visible (docs/design.md says why this beats a stateful stratifier).

Sampling, from ``split.sampling``: a category may be thinned by ``weight`` (the share of its
clusters kept, chosen by hash, so the choice is sticky too) and capped at ``cap`` records, filled
in round order, reviewed records first. Categories not listed are kept whole: rare, high-risk
failures are the last thing to sample away. Records whose label's guideline action is
``exclude``, and every record sampled away, end ``excluded`` with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import parts, records, split_hashes, store
from flywheel.errors import GateError
from flywheel.guidelines import Guidelines
from flywheel.io import read_parquet, write_json
from flywheel.split_hashes import Cached, unit_hash, unit_hashes

log = logging.getLogger(__name__)
Floats = np.ndarray[Any, np.dtype[np.float64]]


def assign(cluster_id: str, seed: int, eval_fraction: float) -> str:
    return "eval" if unit_hash(seed, cluster_id) < eval_fraction else "train"


Bools = np.ndarray[Any, np.dtype[np.bool_]]
Excluded = list[tuple[Bools, pa.Array | str]]  # rows sampled away, and why (one, or each's)
Hashes = Callable[[int, pa.ChunkedArray | pa.Array, Bools], Floats]  # unit_hashes, or Cached


def apply(
    table: pa.Table,
    guidelines: Guidelines,
    seed: int,
    eval_fraction: float,
    sampling: dict[str, dict[str, Any]] | None = None,
    hashes: Hashes = unit_hashes,
) -> pa.Table:
    # Whole columns through Arrow compute: the object arrays of a million strings this used
    # cost a third of a second.
    open_ = records.bools(pc.is_null(table.column("fate")))
    excluded_labels = [
        name for name in guidelines.label_names if guidelines.action_of(name) == "exclude"
    ]
    action = pc.is_in(table.column("label"), value_set=pa.array(excluded_labels, pa.string()))
    dropped = open_ & records.bools(action)
    named = pc.fill_null(records.one_array(table.column("label")).filter(dropped), "")
    why = pc.binary_join_element_wise("label '", named, "' has guideline action exclude", "")
    excluded: Excluded = [(dropped, why)]  # the reasons of the dropped rows alone
    open_ &= ~dropped
    excluded += _sample(table, seed, sampling or {}, open_, hashes)
    u = hashes(seed, table.column("cluster_id"), open_)
    split = np.full(table.num_rows, None, dtype=object)
    split[open_] = np.where(u[open_] < eval_fraction, "eval", "train")
    splits = pa.array(split, pa.string())
    fate = records.one_array(table.column("fate"))
    detail = records.one_array(table.column("fate_detail"))
    for rows, reason in excluded:
        mask = pa.array(rows)
        fate = pc.if_else(mask, "excluded", fate)
        if isinstance(reason, str):
            detail = pc.if_else(mask, reason, detail)
        else:  # one reason per excluded row
            detail = pc.replace_with_mask(detail, mask, reason)
    fate = pc.if_else(pa.array(open_), splits, fate)
    return records.typed(records.replace(table, split=splits, fate=fate, fate_detail=detail))


def _sample(
    table: pa.Table, seed: int, sampling: dict[str, dict[str, Any]], open_: Bools, hashes: Hashes
) -> Excluded:
    """Thin and cap the categories in ``sampling``: the rows excluded, each with its reason
    (``open_`` loses them, in place)."""
    if not sampling:
        return []
    encoded = pc.dictionary_encode(records.one_array(table.column("error_category")))
    names = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False)

    def of(wanted: list[str]) -> Bools:
        return np.isin(codes, [i for i, name in enumerate(names) if name in wanted])

    weighted = open_ & of([n for n, r in sampling.items() if "weight" in r])
    keep_u = hashes(seed + 1, table.column("cluster_id"), weighted)
    # Fill order for caps: earlier rounds first (their records are already in the splits), then
    # reviewed records, then by id. Only the open records of capped categories can be ranked:
    # sorting those, not a million ids, is the same order for them.
    capped = open_ & of([n for n, r in sampling.items() if "cap" in r])
    rows = pa.array(np.flatnonzero(capped))
    ranked_rows = pc.sort_indices(
        pa.table(
            {
                "round": table.column("round").take(rows),
                "reviewed": pc.invert(table.column("reviewed").take(rows)),
                "id": table.column("id").take(rows),
            }
        ),
        sort_keys=[("round", "ascending"), ("reviewed", "ascending"), ("id", "ascending")],
    )
    order = rows.take(ranked_rows).to_numpy()
    out: Excluded = []
    for name, rule in sorted(sampling.items()):
        members = open_ & of([name])
        weight = rule.get("weight")
        if weight is not None:
            thinned = members & (keep_u >= weight)
            why = f"category {name} sampled at weight {weight} (split.sampling.{name}.weight)"
            out.append((thinned, why))
            members &= ~thinned
            open_ &= ~thinned
        cap = rule.get("cap")
        if cap is not None:
            ranked = order[members[order]]
            over = np.zeros(len(open_), dtype=bool)
            over[ranked[int(cap) :]] = True
            out.append(
                (over, f"category {name} capped at {cap} records (split.sampling.{name}.cap)")
            )
            open_ &= ~over
    return out


def leakage(table: pa.Table, pairs: pa.Table | None = None) -> dict[str, int]:
    """Clusters with members in both splits, and near-duplicate pairs across them (both must be
    0). Both by hash lookups the size of the split records and of the pairs' ends: the Arrow
    group-by and a hash of every id cost 0.45 s at a million records."""
    split = table.column("split")
    in_split = records.bools(pc.is_valid(split))
    codes = pc.dictionary_encode(records.one_array(table.column("cluster_id")).filter(in_split))
    cluster = np.asarray(codes.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    is_eval = records.bools(pc.equal(records.one_array(split).filter(in_split), "eval"))
    size = len(codes.dictionary)
    both = (np.bincount(cluster[is_eval], minlength=size) > 0) & (
        np.bincount(cluster[~is_eval], minlength=size) > 0
    )
    crossing = 0
    if pairs is not None and pairs.num_rows:
        ends = pa.chunked_array([*pairs.column("a").chunks, *pairs.column("b").chunks])
        rows = records.positions(ends, table.column("id"))
        of = records.one_array(split).take(pa.array(rows, mask=rows < 0))
        a, b = of.slice(0, pairs.num_rows), of.slice(pairs.num_rows)
        crossing = int(pc.sum(pc.fill_null(pc.not_equal(a, b), False)).as_py() or 0)
    return {"leaking_clusters": int(both.sum()), "leaking_pairs": crossing}


@dataclass(frozen=True)
class Outputs:
    records: Path = Path("data/interim/split")  # one patch file per partition
    # Whole records, one file per ingest partition, rewritten only where a row changed.
    train: Path = Path("data/splits/train")
    eval: Path = Path("data/splits/eval")
    index: Path = Path("data/cache/split.json")  # what each train and eval file was written from
    metrics: Path = Path("metrics/split.json")


COLUMNS = ("split", "fate", "fate_detail")
READS = ("id", "round", "label", "reviewed", "error_category", "cluster_id", "fate", "fate_detail")


def run(
    layers: Sequence[Path],
    guidelines: Guidelines,
    params: dict[str, Any],
    pairs_path: Path | None = None,
    outputs: Outputs = Outputs(),
    hash_cache: Path = split_hashes.CACHE,
) -> dict[str, Any]:
    hashes = Cached(store.partitions(layers[0]), hash_cache)
    table = apply(
        store.load(layers, list(READS)),
        guidelines,
        int(params["seed"]),
        float(params["eval_fraction"]),
        params.get("sampling"),
        hashes,
    )
    hashes.tidy()
    pairs = read_parquet(pairs_path) if pairs_path is not None and pairs_path.exists() else None
    leaks = leakage(table, pairs)
    if any(leaks.values()):
        raise GateError(
            f"{leaks['leaking_clusters']} clusters and {leaks['leaking_pairs']} near-duplicate pairs "
            "straddle train and eval; this is a bug in split assignment, please report it with "
            "data/interim/dedup.parquet."
        )
    splits = table.column("split")
    keys = parts.write_patches(outputs.records, store.partitions(layers[0]), table, COLUMNS)
    # The splits are whole records: the texts from ingest's partitions, the rest from the
    # stages' patches and this stage's columns.
    chosen = {
        outputs.train: pc.equal(splits, "train"),
        outputs.eval: pc.equal(splits, "eval"),
    }
    masks = {path: records.bools(m) for path, m in chosen.items()}
    columns = {c: table.column(c) for c in COLUMNS}
    written = parts.write_records(layers, columns, masks, keys, outputs.index)
    log.info("split: %d train and eval files written, the others unchanged", written)
    by = (
        table.filter(pc.is_valid(splits))
        .group_by(["error_category", "split"])
        .aggregate([("id", "count")])
    )
    counts: dict[str, dict[str, int]] = {}
    for row in by.to_pylist():
        counts.setdefault(row["error_category"], {"train": 0, "eval": 0})[row["split"]] = row[
            "id_count"
        ]
    excluded = table.filter(pc.equal(table.column("fate"), "excluded"))
    reasons = excluded.group_by("fate_detail").aggregate([("id", "count")]).to_pylist()
    metrics = {
        "train": int(masks[outputs.train].sum()),
        "eval": int(masks[outputs.eval].sum()),
        "excluded": excluded.num_rows,
        "excluded_by_reason": {
            r["fate_detail"]: r["id_count"] for r in sorted(reasons, key=lambda r: r["fate_detail"])
        },
        **leaks,
        "eval_share_by_category": {
            c: round(n["eval"] / (n["eval"] + n["train"]), 4) for c, n in sorted(counts.items())
        },
    }
    write_json(outputs.metrics, metrics)
    return metrics
