"""The ``flywheel`` command: thin click wrappers over the library.

Each command parses its options, calls one library function and prints; a ``FlywheelError`` from
the library becomes ``Error: <message>`` and exit status 1, here and only here.
"""

from __future__ import annotations

import importlib.abc
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from flywheel import __version__
from flywheel import guidelines as guidelines_mod
from flywheel import params as params_mod
from flywheel.errors import FlywheelError
from flywheel.io import dumps_json
from flywheel.memory import keep_freed_memory

F = TypeVar("F", bound=Callable[..., Any])


class Group(click.Group):
    """Converts library errors to ``click.ClickException`` in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FlywheelError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=Group)
@click.version_option(__version__, prog_name="flywheel")
def main() -> None:
    """A versioned dataset repository for the data flywheel of a fine-tuned LLM."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    keep_freed_memory()


# Libraries that other libraries import only to ask a question flywheel's answer to is "no":
# pyarrow imports pandas the first time it converts a Python or numpy value, to ask whether the
# value is a pandas object (0.25-0.4 s); numba imports scipy.linalg on its first compiled call,
# to ask whether a BLAS is there for ``np.dot`` (0.35-0.4 s of dedup), which flywheel's
# kernels do not use. Measured with ``python -X importtime`` and cProfile.
REFUSED = ("pandas", "scipy")


class _Refuse(importlib.abc.MetaPathFinder):
    """Refuses to import the ``REFUSED`` packages (see ``entry``)."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name.partition(".")[0] in REFUSED:
            raise ModuleNotFoundError(f"flywheel's own process does not use {name}", name=name)


def entry() -> None:
    """The ``flywheel`` console script: ``main`` in a process of its own, which refuses the
    ``REFUSED`` imports (the libraries asking then take the answer "not installed"). Not in
    ``main``: a program that imports flywheel (its tests too) keeps its pandas and scipy."""
    if not any(name in sys.modules for name in REFUSED):
        sys.meta_path.insert(0, _Refuse())
    main()


def repo_options(f: F) -> F:
    """--params and --guidelines, shared by every stage."""
    f = click.option(
        "--params",
        "params_path",
        type=click.Path(path_type=Path),
        default=params_mod.DEFAULT_PATH,
        show_default=True,
        help="Parameters file.",
    )(f)
    f = click.option(
        "--guidelines",
        "guidelines_path",
        type=click.Path(path_type=Path),
        default=guidelines_mod.DEFAULT_PATH,
        show_default=True,
        help="Guidelines file.",
    )(f)
    return f


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    if as_json or text is None:
        click.echo(dumps_json(data), nl=False)
    else:
        click.echo(text(data))


def summary(metrics: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in metrics.items())


STAGE_HELP = {
    "ingest": "Read every export in data/raw into validated, scrubbed records; quarantine bad rows.",
    "label": "Settle each record's final label from annotations and review decisions.",
    "agreement": "Measure annotator agreement; fail below the gates in params.yaml.",
    "bucket": "Put each record in its error category.",
    "dedup": "Cluster duplicates and keep one representative per cluster.",
    "split": "Assign train/eval by cluster: deterministic, leak-free, sticky.",
    "report": "Write the ledger and the round manifest; fail if the ledger does not balance.",
}


def repo_from(params_path: Path, guidelines_path: Path, reviews_dir: Path) -> Any:
    from flywheel.pipeline import Repo

    return Repo(params_path, guidelines_path, reviews_dir)


def reviews_option(f: F) -> F:
    return click.option(
        "--reviews",
        "reviews_dir",
        type=click.Path(path_type=Path),
        default=Path("data/reviews"),
        show_default=True,
        help="Folder of review decisions.",
    )(f)


def _stage_command(name: str) -> None:
    @main.command(name, help=STAGE_HELP[name])
    @repo_options
    @reviews_option
    @json_option
    def command(params_path: Path, guidelines_path: Path, reviews_dir: Path, as_json: bool) -> None:
        from flywheel.pipeline import run_stage

        metrics = run_stage(name, repo_from(params_path, guidelines_path, reviews_dir))
        emit(metrics, as_json, summary)
        for unknown in metrics.get("unknown_review_ids", []):
            click.echo(f"Warning: review decision for an unknown record id at {unknown}", err=True)


for _name in STAGE_HELP:
    _stage_command(_name)


@main.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@repo_options
@reviews_option
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Queue model confidence below this (default: params.yaml queue.confidence_threshold, "
    "or 0.6 for a FILE).",
)
@click.option(
    "--id", "id_column", default="id", show_default=True, help="Id column of a wide FILE."
)
@click.option(
    "--confidence", default="model_confidence", show_default=True, help="Confidence column of FILE."
)
@click.option("--item", default=None, help="Item column of a long FILE (one row per annotation).")
@click.option("--annotator", default=None, help="Annotator column of a long FILE.")
@click.option("--label", "label_column", default=None, help="Label column of a long FILE.")
@json_option
def queue(
    file: Path | None,
    params_path: Path,
    guidelines_path: Path,
    reviews_dir: Path,
    threshold: float | None,
    id_column: str,
    confidence: str,
    item: str | None,
    annotator: str | None,
    label_column: str | None,
    as_json: bool,
) -> None:
    """Build the review queue; with FILE, print the queue of any annotated table."""
    from flywheel import queue_file, tables

    if file is not None:
        entries = queue_file.from_table(
            tables.read_table(file, csv_as_text=False),
            file,
            0.6 if threshold is None else threshold,
            id_column=id_column,
            confidence=confidence,
            item=item,
            annotator=annotator,
            label=label_column,
        )
        emit(
            entries,
            as_json,
            lambda es: "\n".join(
                f"id={e['id']} confidence={e['model_confidence']} reasons={','.join(e['reasons'])}"
                for e in es
            ),
        )
        return
    from flywheel.pipeline import run_stage

    overrides = None if threshold is None else {"confidence_threshold": threshold}
    repo = repo_from(params_path, guidelines_path, reviews_dir)
    emit(run_stage("queue", repo, overrides), as_json, summary)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--item", default=None, help="Item column (one row per rating).")
@click.option("--annotator", default=None, help="Annotator column (one row per rating).")
@click.option("--label", "label_column", default=None, help="Label column (one row per rating).")
@click.option(
    "--annotators", default=None, help="Comma-separated label columns, one per annotator."
)
@click.option(
    "--id", "id_column", default="id", show_default=True, help="Item id column of a wide FILE."
)
@click.option(
    "--level",
    type=click.Choice(["nominal", "ordinal", "interval"]),
    default="nominal",
    show_default=True,
    help="Measurement level for Krippendorff's alpha and weighted kappa.",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Bootstrap resamples for 95% intervals (0: none).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option(
    "--guidelines",
    "guidelines_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Guidelines file: orders the labels and says which confused pairs have a boundary example.",
)
@json_option
def agree(
    file: Path,
    item: str | None,
    annotator: str | None,
    label_column: str | None,
    annotators: str | None,
    id_column: str,
    level: str,
    bootstrap: int,
    seed: int,
    guidelines_path: Path | None,
    as_json: bool,
) -> None:
    """Agreement statistics of any annotated JSONL, CSV or Parquet FILE.

    Wide files have one label_<annotator> column per annotator (or name them with --annotators);
    long files have one row per rating (--item, --annotator, --label).
    """
    from flywheel import agree as lib
    from flywheel.stats import summarize

    g = guidelines_mod.load(guidelines_path) if guidelines_path else None
    ratings = lib.load_ratings(
        file,
        item=item,
        annotator=annotator,
        label=label_column,
        id_column=id_column,
        annotators=annotators.split(",") if annotators else None,
        label_order=g.label_names if g else None,
    )
    boundary = g.boundary_pairs() if g else None
    report = summarize(
        ratings, level=level, bootstrap=bootstrap, seed=seed, boundary_pairs=boundary
    )
    emit(report.to_dict(), as_json, lambda _: lib.format_text(report))


@main.command()
@repo_options
@json_option
def validate(params_path: Path, guidelines_path: Path, as_json: bool) -> None:
    """Check every input, guideline and output file against its schema."""
    from flywheel import validate as lib

    result = lib.validate_repo(Path("."), params_path, guidelines_path)
    emit(result.to_dict(), as_json, lambda d: lib.format_text(result))
    if not result.ok:
        sys.exit(1)


@main.group(cls=Group)
def guidelines() -> None:
    """Check and render the label guidelines."""


@guidelines.command("check")
@click.argument("path", type=click.Path(path_type=Path), default=guidelines_mod.DEFAULT_PATH)
def guidelines_check(path: Path) -> None:
    """Validate the guidelines file."""
    g = guidelines_mod.load(path)
    click.echo(
        f"{path}: version {g.version}, {len(g.labels)} labels, {len(g.categories)} categories: ok"
    )


@guidelines.command("render")
@click.argument("path", type=click.Path(path_type=Path), default=guidelines_mod.DEFAULT_PATH)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write here instead of stdout.",
)
def guidelines_render(path: Path, output: Path | None) -> None:
    """Render the guidelines as Markdown for annotators."""
    from flywheel.io import write_text

    text = guidelines_mod.render(guidelines_mod.load(path))
    if output is None:
        click.echo(text, nl=False)
    else:
        write_text(output, text)
