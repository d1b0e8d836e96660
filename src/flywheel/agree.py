"""Library side of ``flywheel agree FILE``: read ratings from a file, and say the report in words.

The computation lives in :mod:`flywheel.stats`; this module only reads JSONL, CSV or Parquet
with pyarrow into :class:`~flywheel.stats.Ratings` and formats an
:class:`~flywheel.stats.AgreementReport` as text. It raises :class:`~flywheel.errors.InputError`
for anything wrong with the file and never prints or exits.

Layouts:

* wide: one row per item, one label column per annotator. Columns named ``label_<annotator>`` are
  found by themselves; ``annotators=[...]`` names the columns instead (the column name is then
  the annotator). Items are identified by ``id_column``.
* long: one row per rating; ``item``, ``annotator`` and ``label`` name the three columns. A file
  whose columns are literally ``item``, ``annotator`` and ``label`` is read as long by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from flywheel.errors import InputError
from flywheel.stats import AgreementReport, Ratings, Stat
from flywheel.tables import KINDS as _KINDS
from flywheel.tables import read_table

WIDE_PREFIX = "label_"
LONG_COLUMNS = ("item", "annotator", "label")


def _where(path: Path, row: int) -> str:
    """A 0-based table row as a person counts it in this kind of file."""
    kind = _KINDS.get(path.suffix.lower())
    if kind == "JSONL":
        return f"line {row + 1}"
    if kind == "CSV":
        return f"row {row + 1} (line {row + 2}, after the header)"
    return f"row {row + 1}"


def _column(table: pa.Table, path: Path, name: str, option: str) -> pa.Array:
    """Column ``name`` as text; ``option`` is the command-line option that chooses it."""
    if name not in table.column_names:
        raise InputError(
            f"{path} has no column {name!r}; columns are: {', '.join(table.column_names)}; "
            f"pass {option} COL."
        )
    column = table.column(name).combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(
            f"{path} column {name!r} holds {column.type} values, not labels or ids; "
            "give it text or numbers."
        ) from exc


def _require_values(column: pa.Array, path: Path, name: str, what: str) -> None:
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(
            f"{path} {_where(path, row)} has no value in column {name!r}; every row needs {what}."
        )


def load_ratings(
    path: Path,
    *,
    item: str | None = None,
    annotator: str | None = None,
    label: str | None = None,
    annotators: Sequence[str] | None = None,
    id_column: str = "id",
    label_order: Sequence[str] | None = None,
) -> Ratings:
    """Read ratings from a JSONL, CSV or Parquet file, wide or long (see the module docstring).

    ``label_order`` fixes the order of the labels (for ordinal statistics); by default numeric
    labels sort as numbers and others alphabetically. Raises InputError naming the file, the
    column or row, and the fix.
    """
    path = Path(path)
    long_given = [
        opt
        for opt, val in (("--item", item), ("--annotator", annotator), ("--label", label))
        if val
    ]
    if annotators and long_given:
        raise InputError(
            f"Pass either --annotators (one label column per annotator) or --item, --annotator and "
            f"--label (one row per rating) for {path}, not both."
        )
    if long_given and len(long_given) < 3:
        missing = [opt for opt in ("--item", "--annotator", "--label") if opt not in long_given]
        raise InputError(
            f"Reading {path} as one row per rating needs --item, --annotator and --label; "
            f"also pass {' and '.join(missing)}."
        )
    table = read_table(path)
    if table.num_rows == 0:
        raise InputError(f"{path} has no rows. Check that it is the right file.")
    try:
        if item and annotator and label:
            return _long(table, path, item, annotator, label, label_order)
        if annotators:
            columns = {name: name for name in annotators}
            return _wide(table, path, columns, id_column, label_order, "--annotators")
        found = {
            name[len(WIDE_PREFIX) :]: name
            for name in table.column_names
            if name.startswith(WIDE_PREFIX) and len(name) > len(WIDE_PREFIX)
        }
        if found:
            return _wide(table, path, found, id_column, label_order, "--annotators")
        if all(name in table.column_names for name in LONG_COLUMNS):
            return _long(table, path, *LONG_COLUMNS, label_order)
    except ValueError as exc:
        raise InputError(f"{path} cannot be read as ratings: {exc}") from exc
    raise InputError(
        f"{path} has no label_<annotator> columns and no item, annotator and label columns; "
        f"columns are: {', '.join(table.column_names)}; pass --annotators COL,COL for one label "
        "column per annotator, or --item, --annotator and --label for one row per rating."
    )


def _long(
    table: pa.Table,
    path: Path,
    item: str,
    annotator: str,
    label: str,
    label_order: Sequence[str] | None,
) -> Ratings:
    items = _column(table, path, item, "--item")
    names = _column(table, path, annotator, "--annotator")
    labels = _column(table, path, label, "--label")
    _require_values(items, path, item, "an item id")
    _require_values(names, path, annotator, "an annotator")
    return Ratings.from_long(items, names, labels, label_order)


def _wide(
    table: pa.Table,
    path: Path,
    columns: dict[str, str],
    id_column: str,
    label_order: Sequence[str] | None,
    option: str,
) -> Ratings:
    ids = _column(table, path, id_column, "--id")
    _require_values(ids, path, id_column, "an item id")
    labels = {name: _column(table, path, col, option) for name, col in columns.items()}
    return Ratings.from_wide(ids, labels, label_order)


# -- text --------------------------------------------------------------------------------------


def _num(x: float | None) -> str:
    return "undefined" if x is None else str(round(x, 3))


def _stat(stat: Stat) -> str:
    """``0.167`` or ``undefined (reason)``."""
    if stat.value is None:
        return f"undefined ({stat.undefined_reason})"
    return _num(stat.value)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_text(report: AgreementReport) -> str:
    """The report for a person: ``agreement = ...`` and ``kappa = ...`` first, then the rest.

    Values are rounded to 3 decimals with ``round``. With two annotators ``kappa`` is Cohen's;
    with more it is Fleiss' (Cohen's is then given per pair).
    """
    lines = [f"agreement = {_stat(report.percent_agreement)}"]
    if len(report.annotators) > 2 and report.fleiss_kappa.value is not None:
        lines.append(
            f"kappa = {_stat(report.fleiss_kappa)} (Fleiss, {len(report.annotators)} annotators)"
        )
    else:
        lines.append(f"kappa = {_stat(report.cohen_kappa)}")
    lines.append(
        f"items: {report.items} ({report.left_out_items} left out with fewer than two ratings), "
        f"annotators: {len(report.annotators)} ({', '.join(report.annotators)}), "
        f"ratings: {report.ratings}, repeated ratings dropped: {report.repeats}"
    )
    by_share = sorted(report.prevalence.items(), key=lambda kv: -kv[1])
    lines.append("prevalence: " + ", ".join(f"{label} {_num(share)}" for label, share in by_share))
    lines.extend(_paradox(report, by_share))
    lines.append("")
    if len(report.annotators) == 2:
        for name, stat in report.cohen_kappa_weighted.items():
            lines.append(f"Cohen's kappa, {name} weights = {_stat(stat)}")
        lines.append(f"Scott's pi = {_stat(report.scott_pi)}")
    else:
        lines.append(f"mean pairwise Cohen's kappa = {_stat(report.mean_pairwise_kappa)}")
    lines.append(f"Fleiss' kappa = {_stat(report.fleiss_kappa)}")
    for level, stat in report.krippendorff_alpha.items():
        lines.append(f"Krippendorff's alpha ({level}) = {_stat(stat)}")
    lines.append(f"Gwet's AC1 = {_stat(report.gwet_ac1)}")
    if report.confidence_intervals:
        first = next(iter(report.confidence_intervals.values()))
        lines += [
            "",
            f"95% bootstrap intervals ({first.replicates} item resamples, seed {first.seed}):",
        ]
        for key, ci in report.confidence_intervals.items():
            if ci.low is None or ci.high is None:
                lines.append(f"  {key}: undefined ({ci.undefined_reason})")
            else:
                note = (
                    f" ({ci.undefined_replicates} resamples undefined)"
                    if ci.undefined_replicates
                    else ""
                )
                lines.append(f"  {key}: {_num(ci.low)} to {_num(ci.high)}{note}")
    lines += ["", "pairs:"]
    for pair in report.pairs:
        extra = "".join(f", kappa {w} = {_stat(s)}" for w, s in pair.weighted.items())
        lines.append(
            f"  {pair.annotators[0]} ~ {pair.annotators[1]}: n = {pair.n}, "
            f"agreement = {_stat(pair.percent_agreement)}, kappa = {_stat(pair.cohen_kappa)}{extra}"
        )
    lines += ["", "per label (one against the rest):"]
    for lab in report.per_label:
        lines.append(
            f"  {lab.label}: prevalence {_num(lab.prevalence)}, specific agreement "
            f"{_stat(lab.specific_agreement)}, kappa {_stat(lab.kappa)}, alpha {_stat(lab.alpha)}"
        )
    lines += ["", "per annotator:"]
    for ann in report.per_annotator:
        mean = _stat(ann.mean_pairwise_kappa)
        text = f"  {ann.annotator}: {_plural(ann.ratings, 'rating')}, mean kappa {mean}"
        if ann.vs_reference is not None:
            ref = ann.vs_reference
            text += (
                f"; against the reference: n = {ref.n}, "
                f"agreement = {_stat(ref.percent_agreement)}, "
                f"kappa = {_stat(ref.cohen_kappa)}"
            )
        lines.append(text)
    lines += ["", "most confused label pairs:"]
    if not report.disagreements:
        lines.append("  none: no two ratings of an item differ.")
    for d in report.disagreements:
        if d.has_boundary_example is None:
            guide = ""
        elif d.has_boundary_example:
            guide = (
                f"; the guidelines have {_plural(d.guideline_examples or 0, 'boundary example')}"
            )
        else:
            guide = "; the guidelines have no boundary example for this pair"
        lines.append(
            f"  {d.labels[0]} / {d.labels[1]}: {_plural(d.count, 'disagreeing rating pair')} on "
            f"{_plural(d.items, 'item')} ({round(100 * d.share)}% of disagreements), "
            f"e.g. items {', '.join(d.examples)}{guide}"
        )
    return "\n".join(lines) + "\n"


def _paradox(report: AgreementReport, by_share: list[tuple[str, float]]) -> list[str]:
    """A note when agreement is high but kappa low because one label dominates."""
    kappa = report.cohen_kappa.value if report.cohen_kappa.defined else report.fleiss_kappa.value
    agreement = report.percent_agreement.value
    if kappa is None or agreement is None or not by_share:
        return []
    label, share = by_share[0]
    if share >= 0.8 and agreement - kappa >= 0.3:
        return [
            f"note: agreement is high but kappa is low because {label!r} is {round(100 * share)}% "
            "of the ratings (the kappa paradox); see Gwet's AC1 and the per-label figures."
        ]
    return []
