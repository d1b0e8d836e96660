"""CLI wiring: every command has help, the lesson's example, and exact error text with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import PROJECT, manifest, row, write_export
from flywheel.cli import main

LESSON = PROJECT / "tests" / "data" / "lesson.jsonl"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out.extend(commands(cmd, (*prefix, name)))
    return out


@pytest.mark.parametrize("path", commands(main), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    code, out = invoke(*path, "--help")
    assert code == 0 and "Usage:" in out
    cmd: click.Command = main
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    assert cmd.help and len(cmd.help.strip()) > 20


def test_every_command_is_in_the_readme() -> None:
    readme = (PROJECT / "README.md").read_text()
    for path in commands(main):
        assert f"flywheel {' '.join(path)}" in readme, (
            f"README.md does not show `flywheel {' '.join(path)}`"
        )


def test_lesson_agree_prints_published_values() -> None:
    code, out = invoke("agree", str(LESSON))
    assert code == 0
    assert out.splitlines()[:2] == ["agreement = 0.6", "kappa = 0.167"]


def test_lesson_agree_json() -> None:
    code, out = invoke("agree", str(LESSON), "--json", "--bootstrap", "0")
    data = json.loads(out)
    assert code == 0 and data["items"] == 5 and data["annotators"] == ["a", "b"]
    assert data["percent_agreement"]["value"] == pytest.approx(0.6)
    assert data["cohen_kappa"]["value"] == pytest.approx(1 / 6, abs=1e-6)


def test_lesson_queue_json_order() -> None:
    code, out = invoke("queue", str(LESSON), "--threshold", "0.6", "--json")
    assert code == 0
    entries = json.loads(out)
    assert [(e["id"], e["model_confidence"]) for e in entries] == [(5, 0.47), (4, 0.51), (3, 0.52)]
    assert [e["reason"] for e in entries] == ["disagreement", "low_confidence", "disagreement"]


def test_queue_of_a_long_file(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        "item,who,lab,model_confidence\n1,a,x,0.9\n1,b,y,0.9\n2,a,x,0.2\n2,b,x,0.2\n3,a,x,0.9\n"
    )
    code, out = invoke(
        "queue", str(path), "--item", "item", "--annotator", "who", "--label", "lab", "--json"
    )
    assert code == 0
    assert [(e["id"], e["reasons"]) for e in json.loads(out)] == [
        (2, ["low_confidence"]),
        (1, ["disagreement"]),
    ]


def test_missing_file_is_a_clean_error() -> None:
    code, out = invoke("agree", "nope.jsonl")
    assert code == 1
    assert out == "Error: nope.jsonl does not exist or is not a file. Check the path.\n"


def test_unknown_format_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "labels.xlsx"
    path.write_text("x")
    code, out = invoke("queue", str(path))
    assert code == 1
    assert out.startswith(
        f"Error: {path} is not a JSONL, CSV or Parquet file: its extension '.xlsx'"
    )


def test_stage_with_params_typo_exits_1_without_traceback(repo: Path) -> None:
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("eval_fraction:", "eval_frac:"))
    code, out = invoke("split")
    assert code == 1 and "Traceback" not in out
    assert out.startswith(
        "Error: params.yaml: section 'split' has unknown key 'eval_frac'. Did you mean 'eval_fraction'?"
    )


def test_stage_run_prints_metrics_json(repo: Path) -> None:
    code, out = invoke("ingest", "--json")
    assert code == 0 and json.loads(out)["rows_read"] == 0


def test_the_warm_up_compiles_what_the_dedup_stage_calls(repo: Path) -> None:
    """``minhash.warm_up`` must load each kernel with the types the stage passes: else the stage
    still pays numba's set-up and a compilation. In a fresh process, after the warm-up, the
    stage adds no compiled signature to any kernel."""
    write_export(repo, manifest("thumbs-1"), [row(i) for i in range(5)])
    probe = """
import sys
from flywheel import dedup, kernels, minhash, params
from flywheel.cli import main
for stage in ("ingest", "label", "bucket"):
    main([stage], standalone_mode=False)
p = params.load()["dedup"]
minhash.warm_up(dedup.minhash_params(p), float(p["threshold"])).join()
names = [n for n in dir(kernels) if n.endswith("_into")]
before = {n: list(getattr(kernels, n).signatures) for n in names}
main(["dedup"], standalone_mode=False)
after = {n: list(getattr(kernels, n).signatures) for n in names}
print(sorted(names), all(before[n] for n in names), before == after)
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["True", "True"], done.stdout


def test_the_console_script_runs_stages_without_pandas(repo: Path) -> None:
    """``flywheel.cli.entry`` refuses pandas and scipy in its own process (pyarrow imports
    pandas only to ask whether a value is a pandas object, numba scipy only to ask for a BLAS);
    pyarrow and numba must still work without them. ``main`` in its place fails this test:
    both are imported. Nor is jsonschema imported once the configuration was found valid
    (``flywheel.schemas``): a second run of each stage validates nothing."""
    write_export(repo, manifest("thumbs-1"), [row(i) for i in range(5)])
    probe = (
        "import atexit, sys; atexit.register(lambda: print(*(f'{m} {m in sys.modules}' for m in "
        "('pandas', 'scipy', 'jsonschema'))));"
        "from flywheel.cli import entry; sys.argv = ['flywheel', sys.argv[1]]; entry()"
    )
    for run in ("first", "again"):
        for stage in ("ingest", "label", "bucket", "dedup", "queue", "split"):
            done = subprocess.run(
                [sys.executable, "-c", probe, stage], capture_output=True, text=True, check=False
            )
            assert done.returncode == 0, done.stderr
            shown = done.stdout.splitlines()[-1]
            assert shown.startswith("pandas False scipy False"), (stage, done.stdout)
            if run == "again":
                assert shown.endswith("jsonschema False"), (stage, done.stdout)
