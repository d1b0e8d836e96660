"""Stage ``label``: the final label of each record and how it was reached.

- ``adjudicated``: a reviewer decided (the latest decision in ``data/reviews`` wins);
- ``agreed``: at least ``label.min_annotators`` annotations and a share of at least
  ``label.agree_share`` gave the same label, with no tie for the most votes;
- ``disputed``: enough annotations, no such majority;
- ``unlabeled``: too few annotations.

``decide`` states the rule for one record; ``apply`` computes it for a whole table at once
(a count matrix records x labels), and the tests hold the two to the same answers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel import parts, records, reviews, store
from flywheel.guidelines import Guidelines, version_key
from flywheel.io import read_parquet, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    label: str | None
    status: str
    guideline_version: str | None


def decide(annotations: list[dict[str, Any]], min_annotators: int, agree_share: float) -> Decision:
    """The final label of one record from its annotations alone."""
    if len(annotations) < min_annotators or not annotations:
        return Decision(None, "unlabeled", None)
    counts = Counter(a["label"] for a in annotations).most_common()
    top, n = counts[0]
    tied = len(counts) > 1 and counts[1][1] == n
    if tied or n / len(annotations) < agree_share:
        return Decision(None, "disputed", None)
    versions = [a["guideline_version"] for a in annotations if a["label"] == top]
    return Decision(top, "agreed", max(versions, key=version_key))


def _codes(values: pa.Array, vocabulary: list[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Position of each value in ``vocabulary`` (-1 when absent or null)."""
    idx = pc.index_in(values, value_set=pa.array(vocabulary, pa.string()))
    return np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def from_annotations(
    table: pa.Table, labels: Sequence[str], min_annotators: int, agree_share: float
) -> pa.Table:
    """Columns label, label_status, label_guideline_version decided from annotations alone."""
    n = table.num_rows
    annotations = table.column("annotations").combine_chunks()
    flat = pc.list_flatten(annotations)
    parent = np.asarray(pc.list_parent_indices(annotations).to_numpy(), dtype=np.int64)
    code = _codes(pc.struct_field(flat, "label"), list(labels))
    counts = np.zeros((n, len(labels)), dtype=np.int32)
    np.add.at(counts, (parent, code), 1)
    total = counts.sum(axis=1)
    top = counts.argmax(axis=1)
    best = counts.max(axis=1)
    tied = (counts == best[:, None]).sum(axis=1) > 1
    enough = (total >= min_annotators) & (total > 0)
    agreed = enough & ~tied & (best >= agree_share * np.maximum(total, 1) - 1e-12)
    status = np.where(agreed, "agreed", np.where(enough, "disputed", "unlabeled"))
    # The guideline version of an agreed label: the newest among the votes that gave it.
    # Versions are few: rank the distinct ones, then map every annotation through its code.
    encoded = pc.dictionary_encode(pc.struct_field(flat, "guideline_version"))
    names = encoded.dictionary.to_pylist()
    distinct = sorted({v for v in names if v}, key=version_key)
    rank = {v: i for i, v in enumerate(distinct)}
    code_rank = np.array([rank[v] if v else -1 for v in names] + [-1], dtype=np.int64)
    indices = pc.fill_null(encoded.indices, len(names)).to_numpy(zero_copy_only=False)
    vrank = code_rank[np.asarray(indices, dtype=np.int64)]
    newest = np.full(n, -1, dtype=np.int64)
    voted = code == top[parent]
    np.maximum.at(newest, parent[voted], vrank[voted])
    label = pa.array(np.array(labels, dtype=object)[top], pa.string())
    mask = pa.array(~agreed)
    version_names = np.array([*distinct, None], dtype=object)
    version = pa.array(version_names[np.where(newest < 0, len(distinct), newest)], pa.string())
    return pa.table(
        {
            "label": pc.if_else(mask, pa.scalar(None, pa.string()), label),
            "label_status": pa.array(status.astype(object), pa.string()),
            "label_guideline_version": pc.if_else(mask, pa.scalar(None, pa.string()), version),
        }
    )


def apply(
    table: pa.Table,
    decisions: dict[str, reviews.Decision],
    guidelines: Guidelines,
    min_annotators: int,
    agree_share: float,
) -> pa.Table:
    """Fill label, label_status, label_guideline_version, reviewed and review."""
    decided = from_annotations(table, list(guidelines.label_names), min_annotators, agree_share)
    ids = table.column("id")
    review_ids = list(decisions)
    hit = _codes(ids.combine_chunks(), review_ids) if review_ids else np.full(table.num_rows, -1)
    reviewed = hit >= 0
    chosen = [decisions[review_ids[i]] for i in hit[reviewed]]
    where = np.flatnonzero(reviewed)

    def overlay(column: pa.Array, values: list[Any]) -> pa.Array:
        out = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
        out[where] = values
        return pa.array(out, column.type)

    review = np.full(table.num_rows, None, dtype=object)
    review[where] = [d.as_review() for d in chosen]
    out = records.replace(
        table,
        label=overlay(decided.column("label").combine_chunks(), [d.label for d in chosen]),
        label_status=overlay(
            decided.column("label_status").combine_chunks(), ["adjudicated"] * len(chosen)
        ),
        label_guideline_version=overlay(
            decided.column("label_guideline_version").combine_chunks(),
            [d.guideline_version for d in chosen],
        ),
        reviewed=pa.array(reviewed),
        review=pa.array(review.tolist(), records.REVIEW),
    )
    return records.typed(out)


@dataclass(frozen=True)
class Outputs:
    records: Path = Path("data/interim/label")  # one patch file per partition (flywheel.parts)
    metrics: Path = Path("metrics/label.json")


COLUMNS = ("label", "label_status", "label_guideline_version", "reviewed", "review")
CODE = ("label", "reviews", "records")  # the modules whose code decides a partition's labels


def run(
    layers: Sequence[Path],
    reviews_dir: Path,
    guidelines: Guidelines,
    params: dict[str, Any],
    outputs: Outputs = Outputs(),
) -> dict[str, Any]:
    """Label each partition whose inputs changed: its records, the review decisions naming
    them, ``params`` or the guidelines (``flywheel.parts``)."""
    decisions = reviews.load(reviews_dir, guidelines)
    files = store.partitions(layers[0])
    common = parts.stage_key(CODE, params, guidelines)
    asked = pa.array(list(decisions), pa.string())
    found = np.zeros(len(asked), dtype=bool)
    keys = []
    mine: list[dict[str, reviews.Decision]] = []
    for path in files:
        own: dict[str, reviews.Decision] = {}
        if decisions:  # the few decisions hashed, each partition's ids looked up in them
            ids = read_parquet(path, ["id"]).column("id")
            named = pc.drop_null(ids.filter(pc.is_in(ids, value_set=asked)))
            found |= records.bools(pc.is_in(asked, value_set=named))
            own = {str(i): decisions[str(i)] for i in named.to_pylist()}
        mine.append(own)
        review_key = [dataclasses.asdict(d) for _, d in sorted(own.items())]
        keys.append(parts.key(common, parts.identity(path), review_key))

    def compute(i: int) -> tuple[pa.Table, parts.Counts]:
        table = pq.read_table(files[i], columns=["id", "annotations"])
        labeled = apply(
            table,
            mine[i],
            guidelines,
            int(params["min_annotators"]),
            float(params["agree_share"]),
        )
        counts = {
            "records": labeled.num_rows,
            "status": records.counts(labeled.column("label_status")),
            "labels": records.counts(labeled.column("label")),
        }
        return labeled, counts

    counts, computed = parts.refresh(outputs.records, files, keys, COLUMNS, compute)
    log.info("label: %d of %d partitions labelled", computed, len(files))
    total = parts.add(counts)
    unknown = sorted(
        d.origin + " " + d.id for d, hit in zip(decisions.values(), found, strict=True) if not hit
    )
    metrics = {
        "records": total.get("records", 0),
        "status": total.get("status", {}),
        "labels": total.get("labels", {}),
        "review_decisions": len(decisions),
        "reviews_applied": len(decisions) - len(unknown),
        # A decision for an id no export delivered is usually a typo in the id: shown, not fatal.
        "unknown_review_ids": unknown,
    }
    write_json(outputs.metrics, metrics)
    return metrics
