"""The stages in dependency order, each callable by name with the repository's files.

``dvc.yaml`` runs each stage as ``flywheel <stage>``; tests and benchmarks run them all in-process
through ``run_all``. Paths are relative to the working directory, the repository root.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel import guidelines as guidelines_mod
from flywheel import params as params_mod

ORDER = ("ingest", "label", "agreement", "bucket", "dedup", "queue", "split", "report")


@dataclass(frozen=True)
class Repo:
    """The files a stage reads, besides the previous stage's output."""

    params: Path = params_mod.DEFAULT_PATH
    guidelines: Path = guidelines_mod.DEFAULT_PATH
    reviews: Path = Path("data/reviews")


# The layers (``flywheel.store``): ingest's records, then each stage's patch in stage order. A
# stage reads the layers of the stages before it. Written out rather than read from each stage's
# ``Outputs``, so that a stage's process imports its own module only (the others cost 0.05 s of
# every stage's start-up); tests/test_pipeline.py holds the two equal.
CHAIN = tuple(
    Path(f"data/interim/{name}")
    for name in ("ingest", "label", "bucket", "dedup", "queue", "split")
)
PAIRS = Path("data/interim/pairs.parquet")  # dedup's near-duplicate pairs, for split's check
LAYERS = {
    "label": CHAIN[:1],
    "agreement": CHAIN[:2],
    "bucket": CHAIN[:2],
    "dedup": CHAIN[:3],
    "queue": CHAIN[:4],
    "split": CHAIN[:5],
    "report": CHAIN,
}


Stage = Callable[[Repo, dict[str, Any], guidelines_mod.Guidelines], dict[str, Any]]


def _stage(name: str) -> Stage:
    """The stage's runner, its module imported only now."""
    run = importlib.import_module(f"flywheel.{name}").run
    calls: dict[str, Stage] = {
        "ingest": lambda r, p, g: run(Path(p["ingest"]["raw_dir"]), g, p["ingest"]),
        "label": lambda r, p, g: run(LAYERS["label"], r.reviews, g, p["label"]),
        "agreement": lambda r, p, g: run(LAYERS["agreement"], g, p["agreement"]),
        "bucket": lambda r, p, g: run(LAYERS["bucket"], g, p["bucket"]),
        "dedup": lambda r, p, g: run(LAYERS["dedup"], g, p["dedup"]),
        "queue": lambda r, p, g: run(LAYERS["queue"], g, p["queue"]),
        "split": lambda r, p, g: run(LAYERS["split"], g, p["split"], PAIRS),
        "report": lambda r, p, g: run(
            Path(p["ingest"]["raw_dir"]), r.reviews, r.guidelines, g, p, LAYERS["report"]
        ),
    }
    return calls[name]


def run_stage(
    name: str, repo: Repo = Repo(), overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run one stage; ``overrides`` replaces keys of its params section (e.g. a CLI option)."""
    p = params_mod.load(repo.params)
    if overrides:
        p[name] = {**p[name], **overrides}
    return _stage(name)(repo, p, guidelines_mod.load(repo.guidelines))


def run_all(repo: Repo = Repo()) -> dict[str, dict[str, Any]]:
    return {name: run_stage(name, repo) for name in ORDER}
