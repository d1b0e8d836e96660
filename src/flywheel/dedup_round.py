"""The dedup stage for a new round: its records decided against the kept state of the earlier
rounds (``flywheel.dedup_state``), without reading or deciding the earlier records again.

A round never changes an earlier round's clusters (``flywheel.dedup``): its keys join earlier
clusters (and are then not kept) or found new ones, after every earlier record in each
cluster's fill order. So when the earlier partitions are exactly those the state was built
from (same names, identities, upstream files and dedup files), every new partition's rounds
come after theirs, and the signature store and the pairs cache hold the state's keys,
``extend`` computes:

- the new records' keys; the signatures of the keys not seen before, matched against each
  other and against the stored signatures (memory-mapped, not copied);
- the new keys' clusters (``dedup.cluster_keys`` from the known clusters), the new records'
  places in their clusters' fill order (after the earlier records), representatives, fates;
- conflicting labels: a cluster whose records now carry two labels queues its representative,
  which may be an earlier record, so the few earlier files holding one are written again;
- the pairs, the signature store, the pairs cache, the metrics and the state, as a build of
  every record writes them.

Anything else (a changed earlier partition, new rules, a torn cache) returns None and the stage
decides every record. Both ways give the same bytes (tests/test_dedup_round.py).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import (
    dedup,
    dedup_pairs,
    dedup_state,
    dedup_texts,
    minhash,
    parts,
    records,
    signature_store,
    store,
)
from flywheel.guidelines import Guidelines
from flywheel.io import write_json, write_parquet
from flywheel.minhash_params import THREADS

if TYPE_CHECKING:
    from flywheel.dedup import Outputs

log = logging.getLogger("flywheel.dedup")
Ints = npt.NDArray[np.int64]
Sigs = npt.NDArray[np.uint32]


def save_state(
    layers: Sequence[Path],
    files: Sequence[Path],
    guidelines: Guidelines,
    params: dict[str, Any],
    outputs: Outputs,
    state: dedup_state.State,
    metrics: dict[str, Any],
    max_round: int,
    keys_digest: str | None = None,
) -> None:
    """Keep ``state`` with what it was built from (after the stage wrote its files).
    ``keys_digest``: ``records.strings_digest(state.keys)``, when the caller has it."""
    state.meta = {
        "settings": parts.stage_key(dedup_state.CODE, params, guidelines),
        "partitions": [dedup_state.partition_inputs(layers, outputs.records, f) for f in files],
        "records": int(metrics["records"]),
        "max_round": max_round,
        "keys_digest": keys_digest or records.strings_digest(state.keys),
        "metrics": metrics,
    }
    dedup_state.save(outputs.state, state)


def extend(
    layers: Sequence[Path], guidelines: Guidelines, params: dict[str, Any], outputs: Outputs
) -> dict[str, Any] | None:
    """The stage's metrics, its outputs written from the new partitions' records alone; None
    when the kept state does not apply (nothing is written then)."""
    state = dedup_state.load(outputs.state)
    if state is None or not len(state.keys):
        return _refused("no usable state of an earlier build")
    meta = state.meta
    files = store.partitions(layers[0])
    known = meta["partitions"]
    if meta["settings"] != parts.stage_key(dedup_state.CODE, params, guidelines):
        return _refused("the stage's code, params or guidelines changed")
    if len(files) < len(known) or any(
        dedup_state.partition_inputs(layers, outputs.records, f) != k
        for f, k in zip(files, known, strict=False)
    ):
        return _refused("an earlier partition changed")
    new_files = files[len(known) :]
    table = store.load(layers, list(dedup.READS), only=new_files)
    rounds = table.column("round").to_numpy()
    if len(rounds) and int(rounds.min()) <= int(meta["max_round"]):
        return _refused("a new partition belongs to an earlier round")
    mh = dedup.minhash_params(params)
    threshold = float(params["threshold"])
    settings = dedup_pairs.settings_of(mh, threshold)
    try:
        stored_keys, segments = signature_store.load_segments(outputs.cache, mh)
    except (minhash.SignatureParamsError, minhash.SignatureFileError):
        return _refused("the signature store is unreadable")
    old_pairs = dedup_pairs.cached(
        dedup.pairs_cache(outputs.cache), len(state.keys), meta["keys_digest"], settings
    )
    if old_pairs is None or not stored_keys.equals(state.keys):
        return _refused("the signature store or the pairs cache is not the state's")
    return _Round(layers, guidelines, params, outputs, state, files, table, mh).run(
        segments, old_pairs, settings
    )


def _refused(why: str) -> dict[str, Any] | None:
    """None, after saying why the state does not apply."""
    log.info("dedup: deciding every record: %s", why)
    return None


class _Round:
    """One build's new records against the state (``extend``)."""

    def __init__(
        self,
        layers: Sequence[Path],
        guidelines: Guidelines,
        params: dict[str, Any],
        outputs: Outputs,
        state: dedup_state.State,
        files: list[Path],
        table: pa.Table,
        mh: minhash.MinHashParams,
    ) -> None:
        self.layers, self.guidelines, self.params, self.outputs = (
            layers,
            guidelines,
            params,
            outputs,
        )
        self.state, self.files, self.table = state, files, table
        self.fields = list(params["fields"])
        self.offset = int(state.meta["records"])  # the new records' first row among all
        self.mh = mh
        self.threshold = float(params["threshold"])

    def texts(self, rows: Ints) -> pa.Array:
        """The joined ``fields`` of records at ``rows`` (among all records)."""
        return dedup.joined_texts(store.take(self.layers, self.fields, rows), self.fields)

    def old_texts(self, ordinals: Ints) -> pa.Array:
        """The texts of earlier keys: kept ones from ``flywheel.dedup_texts``, the others read
        from their first records and kept from now on (a cache from before texts were kept
        fills with the keys the exact check asks for)."""
        keys = self.state.keys.take(pa.array(ordinals))
        found, kept = dedup_texts.lookup(keys)
        if found.all():
            return kept
        read = self.texts(self.state.first_row[ordinals[~found]])
        dedup_texts.add(keys.filter(pa.array(~found)), read)
        return records.interleave(found, kept, read)

    def run(
        self, segments: list[Sigs], old_pairs: Ints, settings: dict[str, object]
    ) -> dict[str, Any]:
        state, table = self.state, self.table
        n_old_keys = len(state.keys)
        n = table.num_rows
        rec_key, new_keys, new_first_round, new_first_row = self.keys()
        new_texts = self.texts(new_first_row) if len(new_keys) else pa.array([], pa.string())
        new_sigs = (
            minhash.signatures(new_texts, self.mh, workers=THREADS)
            if len(new_keys)
            else np.zeros((0, self.mh.num_perm), np.uint32)
        )
        found = self.pairs(segments, new_sigs, new_texts, new_first_round)
        pairs = np.concatenate((old_pairs, found))
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else pairs
        first_round = np.concatenate((np.full(n_old_keys, -1), new_first_round))
        cluster, attached = dedup.cluster_keys(
            first_round, found, known=(state.cluster, state.attached)
        )
        n_clusters = int(cluster.max(initial=-1)) + 1
        rec_cluster, rec_attached = cluster[rec_key], attached[rec_key]

        n_old_clusters = len(state.size)
        before = np.zeros(n_clusters, dtype=np.int64)
        before[:n_old_clusters] = state.size
        rules = list(self.params.get("representative", dedup.RULES))
        position = dedup._fill_order(table, self.guidelines, rec_cluster, rules)
        position += before[rec_cluster]
        kept = (position < int(self.params.get("cluster_cap", 1))) & ~rec_attached

        ids = table.column("id").combine_chunks()
        founders = np.flatnonzero(position == 0)  # one per cluster founded in this round
        founder = np.empty(n_clusters - n_old_clusters, dtype=np.int64)
        founder[rec_cluster[founders] - n_old_clusters] = founders
        rep_id = pa.concat_arrays([state.rep_id, ids.take(pa.array(founder))])
        rep_key = np.concatenate((state.rep_key, rec_key[founder]))
        rep_row = np.concatenate((state.rep_row, self.offset + founder))

        dup = ~kept
        rec_rep = rep_id.take(pa.array(rec_cluster)).to_numpy(zero_copy_only=False)
        exact = np.zeros(n, dtype=bool)
        exact[dup] = rec_key[dup] == rep_key[rec_cluster[dup]]
        fate, detail = dedup.duplicate_fates(table, dup, exact, rec_rep)
        all_keys = pa.concat_arrays([state.keys, new_keys])
        names = dedup.cluster_names(all_keys, dedup._first_keys(cluster)[rec_cluster])

        label, conflicted = self.labels(rec_cluster, n_clusters)
        newly = np.flatnonzero(conflicted[:n_old_clusters] & ~state.conflicted)
        carried = table.column("queue_reasons").to_pylist()
        dedup.add_conflict(carried, founders[conflicted[rec_cluster[founders]]].tolist())
        out = records.typed(
            records.replace(
                table,
                cluster_id=names,
                duplicate_of=pa.array(np.where(dup, rec_rep, None), pa.string()),
                fate=fate,
                fate_detail=detail,
                queue_reasons=pa.array(carried, pa.list_(pa.string())),
            )
        )
        old_files = self.files[: len(state.meta["partitions"])]
        marked = self.mark_conflicts(old_files, state.rep_row[newly])
        parts.write_patches(
            self.outputs.records, self.files[len(old_files) :], out, dedup.COLUMNS, old_files
        )

        new_kept = self.kept_ids(rec_key - n_old_keys, kept, ids, len(new_keys))
        kept_id = pa.concat_arrays([state.kept_id, new_kept])
        write_parquet(
            self.outputs.pairs,
            pa.table(
                {
                    "a": kept_id.take(pa.array(pairs[:, 0])),
                    "b": kept_id.take(pa.array(pairs[:, 1])),
                },
                schema=dedup.PAIRS_SCHEMA,
            ),
        )
        digest = records.strings_digest(all_keys)
        self.save_signatures(segments, new_keys, new_sigs)
        if len(new_keys):
            dedup_texts.add(new_keys, new_texts)
        dedup_pairs.save(
            dedup.pairs_cache(self.outputs.cache), pairs, digest, len(all_keys), settings
        )

        old = state.meta["metrics"]
        size = before + np.bincount(rec_cluster, minlength=n_clusters)
        reasons = out.column("queue_reasons").to_pylist()
        exact_n = old["exact_duplicates"] + int((dup & exact).sum())
        near_n = old["near_duplicates"] + int((dup & ~exact).sum())
        metrics = {
            "records": old["records"] + n,
            "duplicates": exact_n + near_n,
            "keys": len(all_keys),
            "near_duplicate_pairs": len(pairs),
            "exact_duplicates": exact_n,
            "near_duplicates": near_n,
            "clusters": n_clusters,
            "clusters_with_duplicates": int((size > 1).sum()),
            "largest_cluster": int(size.max(initial=0)),
            "conflicting_clusters": old["conflicting_clusters"]
            + marked
            + sum(1 for r in reasons if r and dedup.CONFLICT in r),
        }
        write_json(self.outputs.metrics, metrics)
        log.info("dedup: %d new records against %d earlier keys", n, n_old_keys)
        log.info("dedup: %d signatures computed, %d reused", len(new_keys), n_old_keys)
        grown = dedup_state.State(
            keys=all_keys,
            cluster=cluster,
            attached=attached,
            first_row=np.concatenate((state.first_row, new_first_row)),
            kept_id=kept_id,
            rep_row=rep_row,
            rep_id=rep_id,
            rep_key=rep_key,
            size=size,
            label=label,
            conflicted=conflicted,
            segments=state.segments,  # the earlier keys and clusters are on disk already
        )
        max_round = max(
            int(state.meta["max_round"]), int(pc.max(table.column("round")).as_py() or -1)
        )
        save_state(
            self.layers,
            self.files,
            self.guidelines,
            self.params,
            self.outputs,
            grown,
            metrics,
            max_round,
            digest,
        )
        return metrics

    def keys(self) -> tuple[Ints, pa.Array, Ints, Ints]:
        """Each new record's key ordinal (earlier keys keep theirs; keys seen first in this
        build follow, in first-delivery order), and the new keys, their first rounds and their
        first records' rows (among all records)."""
        table, n = self.table, self.table.num_rows
        source = None
        if self.fields != ["prompt", "response"]:
            source = store.take(self.layers, self.fields, self.offset + np.arange(n))
        encoded = pc.dictionary_encode(dedup.keys(table, self.fields, source)).combine_chunks()
        local = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        distinct = encoded.dictionary
        at = records.positions(distinct, self.state.keys)
        known = at >= 0
        rounds = table.column("round").to_numpy(zero_copy_only=False).astype(np.int64)
        first_round = np.full(len(distinct), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first_round, local, rounds)
        first_row = np.full(len(distinct), n, dtype=np.int64)
        np.minimum.at(first_row, local, np.arange(n))
        fresh = np.flatnonzero(~known)
        fresh = fresh[np.lexsort((first_row[fresh], first_round[fresh]))]
        ordinal = np.empty(len(distinct), dtype=np.int64)
        ordinal[known] = at[known]
        ordinal[fresh] = len(self.state.keys) + np.arange(len(fresh))
        return (
            ordinal[local],
            distinct.take(pa.array(fresh)),
            first_round[fresh],
            self.offset + first_row[fresh],
        )

    def pairs(
        self, segments: list[Sigs], new_sigs: Sigs, new_texts: pa.Array, first_round: Ints
    ) -> Ints:
        """Verified pairs ``(i, j)``, ``i < j``, that touch a new key, as ``dedup_pairs.find``
        finds them round by round: within each round and against every key before it."""
        base = len(self.state.keys)
        bands, rows = minhash.lsh_params(self.threshold, self.mh.num_perm)
        change = np.flatnonzero(np.diff(first_round)) + 1
        bounds = [0, *change.tolist(), len(first_round)]
        found = []
        for start, stop in itertools.pairwise(bounds):
            if stop <= start:
                continue
            inner = minhash.candidate_pairs(new_sigs[start:stop], bands, rows) + base + start
            earlier = [*segments, new_sigs[:start]]
            cross = minhash.cross_candidates(new_sigs[start:stop], earlier, bands, rows)
            cross = np.stack((cross[:, 1], cross[:, 0] + base + start), axis=1)
            found += [inner, cross]
        candidates = np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)
        if not len(candidates):
            return candidates
        # Verified on the signatures of the keys involved alone, gathered from the segments.
        involved, local = np.unique(candidates, return_inverse=True)
        sigs = self.gather(segments, new_sigs, involved)

        def shingles_of(at: Ints) -> minhash.Shingles:
            keys = involved[at]
            new = keys >= base
            ours = new_texts.take(pa.array(keys[new] - base))
            theirs = self.old_texts(keys[~new]) if not new.all() else pa.array([], pa.string())
            return minhash.shingle_hashes(records.interleave(new, ours, theirs), self.mh)

        local = local.reshape(-1, 2)
        kept = dedup_pairs.verify(sigs, local, self.threshold, self.mh, shingles_of)
        return involved[kept]

    @staticmethod
    def gather(segments: list[Sigs], new_sigs: Sigs, keys: Ints) -> Sigs:
        """The signatures of key ordinals ``keys`` (sorted) from the segments, then the new."""
        out = np.empty((len(keys), new_sigs.shape[1]), dtype=np.uint32)
        start = 0
        for segment in [*segments, new_sigs]:
            lo, hi = np.searchsorted(keys, [start, start + len(segment)])
            out[lo:hi] = segment[keys[lo:hi] - start]
            start += len(segment)
        return out

    def labels(self, rec_cluster: Ints, n_clusters: int) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
        """Every cluster's smallest label and whether its records carry two or more, with the
        new records' labels added to the state's."""
        state, n_old = self.state, len(self.state.size)
        theirs, mixed = dedup_state.cluster_labels(
            rec_cluster, self.table.column("label"), n_clusters
        )
        ours = pa.concat_arrays([state.label, pa.nulls(n_clusters - n_old, pa.string())])
        conflicted = np.concatenate((state.conflicted, np.zeros(n_clusters - n_old, dtype=bool)))
        touched = np.unique(rec_cluster)
        mine = theirs.take(pa.array(touched)).to_pylist()
        before = ours.take(pa.array(touched)).to_pylist()
        smallest = []
        for c, new, old in zip(touched.tolist(), mine, before, strict=True):
            if new is not None:
                conflicted[c] |= bool(mixed[c]) or (old is not None and old != new)
            smallest.append(new if old is None else old if new is None else min(old, new))
        mask = np.zeros(n_clusters, dtype=bool)
        mask[touched] = True
        label = pc.replace_with_mask(ours, pa.array(mask), pa.array(smallest, pa.string()))
        return label, conflicted

    def mark_conflicts(self, old_files: list[Path], rows: Ints) -> int:
        """Queue the earlier representatives at ``rows`` as conflicting: their partitions'
        dedup files are written again. Returns how many were marked."""
        marked = 0
        spans = store.spans(old_files)
        for partition, (start, size) in zip(old_files, spans, strict=True):
            mine = np.unique(rows[(rows >= start) & (rows < start + size)]) - start
            if not len(mine):
                continue
            path = store.patch_path(self.outputs.records, partition)
            patch = store.read_layer(path, ["id", *dedup.COLUMNS])
            column = records.one_array(patch.column("queue_reasons"))
            # Only the marked rows' lists go through Python; the column is spliced around them.
            reasons = column.take(pa.array(mine)).to_pylist()
            marked += dedup.add_conflict(reasons, range(len(mine)))
            pieces, after = [], 0  # the rows before the next marked one start at ``after``
            for row, value in zip(mine.tolist(), reasons, strict=True):
                pieces += [column.slice(after, row - after), pa.array([value], column.type)]
                after = row + 1
            spliced = pa.concat_arrays([*pieces, column.slice(after)])
            patch = records.replace(patch, queue_reasons=spliced)
            parts.write_patches(self.outputs.records, [partition], patch, dedup.COLUMNS, self.files)
        return marked

    @staticmethod
    def kept_ids(rec_key: Ints, kept: npt.NDArray[np.bool_], ids: pa.Array, n_new: int) -> pa.Array:
        """For each new key (``rec_key``: ordinals counted from the first new key), its first
        kept record's id, else its first record's."""
        mine = np.flatnonzero(rec_key >= 0)
        rows = dedup._kept_record_of_key(kept[mine], rec_key[mine], n_new)
        return ids.take(pa.array(mine[rows] if n_new else np.zeros(0, dtype=np.int64)))

    def save_signatures(self, segments: list[Sigs], new_keys: pa.Array, new_sigs: Sigs) -> None:
        """Add the new keys' signatures to the store, as ``dedup_sign.sign`` does."""
        folder = self.outputs.cache
        if len(segments) >= signature_store.MAX_SEGMENTS:
            every = np.concatenate([*segments, new_sigs])
            keys = pa.concat_arrays([self.state.keys, new_keys])
            signature_store.replace_store(folder, keys, every, self.mh)
        elif len(new_keys):
            signature_store.add_segment(folder, new_keys, new_sigs, self.mh)
