#!/usr/bin/env python3
"""Time the round's data stages at scale: a full rebuild, then a small incremental round.

    .venv/bin/python benchmarks/bench_pipeline.py                    # 1,000,000 records, 1 repeat
    .venv/bin/python benchmarks/bench_pipeline.py --quick            # 20,000 records, 3 repeats
    .venv/bin/python benchmarks/bench_pipeline.py --records 200000 --repeats 3 --json out.json

What it does, per repeat:

1. ``benchmarks/make_records.py`` writes a dataset repository with ``--records`` records over
   ``--rounds`` rounds (once, into a scratch folder; not timed below). Each repeat starts from a
   fresh hard-linked copy of it, so no repeat sees another's outputs or caches.
2. Full rebuild: ``flywheel ingest``, ``label``, ``bucket``, ``dedup``, ``queue``, ``split`` (the
   data stages, in dvc.yaml's order), then ``agreement`` and ``report`` (listed separately; not in
   the data-stage total). Each stage is its own process, run as ``dvc repro`` would (``flywheel
   <stage>`` in the repository, the venv's ``bin`` first on PATH), so its time includes interpreter
   start-up and imports.
3. Incremental: ``make_records.py --append-round --percent P`` adds round max+1 holding P% as many
   new records (not timed), then the data stages run again on the same folder, with whatever the
   full rebuild left behind.

Per stage it measures wall time (``time.perf_counter`` around the process) and peak RSS: the
larger of GNU ``time -f %M`` (the largest single process's maximum resident set size, from
``wait4``; when ``/usr/bin/time`` supports it, else the stage's ``VmHWM`` in
``/proc/<pid>/status`` polled every 20 ms) and the sum of the resident sets of all the stage's
processes polled every 250 ms (ingest maps exports in worker processes, whose memory adds up;
polling is a lower bound, growth between polls is missed). It prints which one it used.

Goals: the data stages of a full rebuild at 1M records within 60 s in total and 4 GB peak RSS
(the largest stage); the incremental round within 20% of the full rebuild's time. Times are
medians over ``--repeats``; machines are noisy, so compare medians and ratios, not single runs.
A stage that fails prints its output and the script exits 1, as it does when a stage runs past
``--stage-timeout`` or its processes hold more than ``--max-rss-mb`` (default 16,000 MB; the
stage is stopped) and, with ``--check-goals``, when a goal is missed. After the full rebuild the
ledger (``data/ledger.parquet``) must have one row per generated input row, or it exits 1.
SIGTERM or Ctrl-C stops the running stage too, and the scratch folder is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
MAKE_RECORDS = HERE / "make_records.py"
DATA_STAGES = ("ingest", "label", "bucket", "dedup", "queue", "split")
OTHER_STAGES = ("agreement", "report")
GOAL_SECONDS = 60.0
GOAL_RSS_MB = 4096.0
GOAL_RATIO = 0.20
QUICK_RECORDS = 20_000
GNU_TIME = Path("/usr/bin/time")


class StageError(Exception):
    """A stage exited non-zero (or timed out); the message carries its output."""


@dataclass(frozen=True)
class Limits:
    """When to stop a stage: after ``seconds``, or when its processes hold over ``rss_mb``
    (the machine is shared; a runaway stage should not take it down)."""

    seconds: float | None = None
    rss_mb: float | None = None


@dataclass
class Measure:
    stage: str
    seconds: float
    rss_mb: float | None


@dataclass
class Repeat:
    full: list[Measure] = field(default_factory=list)
    incremental: list[Measure] = field(default_factory=list)
    appended_records: int = 0


# ---------------------------------------------------------------------------------------------
# Running one stage
# ---------------------------------------------------------------------------------------------

_RUNNING: subprocess.Popen[Any] | None = None  # the child this script is waiting on
_SPAWNING = False  # a child is being started; a stop signal then waits until it is recorded
_STOP: int | None = None


def _stop_running(signum: int, _frame: FrameType | None) -> None:
    """On SIGTERM/SIGINT end the child this script started (its whole process group), then exit."""
    global _STOP
    _STOP = signum
    if _SPAWNING:
        return  # _start finishes recording the child, then calls this again
    if _RUNNING is not None and _RUNNING.returncode is None:
        # not Popen.wait: the interrupted code may hold its lock
        with contextlib.suppress(ProcessLookupError):
            os.killpg(_RUNNING.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(_RUNNING.pid, 0)
    raise SystemExit(128 + signum)


def _start(cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start a child in its own process group and record it, so that an interrupt at any moment
    stops it rather than leaving it running."""
    global _RUNNING, _SPAWNING
    _SPAWNING = True
    try:
        _RUNNING = proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
    finally:
        _SPAWNING = False
    if _STOP is not None:
        _stop_running(_STOP, None)
    return proc


def gnu_time_works() -> bool:
    if not GNU_TIME.exists():
        return False
    with tempfile.NamedTemporaryFile() as out:
        done = subprocess.run(
            [str(GNU_TIME), "-f", "%M", "-o", out.name, "true"], capture_output=True, check=False
        )
        text = Path(out.name).read_text().strip()
    return done.returncode == 0 and text.isdigit()


def _vm_hwm_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _tree_pids(pid: int) -> list[int] | None:
    """``pid`` and its descendants, from ``/proc/<pid>/task/<tid>/children`` (a few reads per
    process; None where the kernel lacks those files)."""
    pids, i = [pid], 0
    while i < len(pids):
        try:
            tasks = list(Path(f"/proc/{pids[i]}/task").iterdir())
            for task in tasks:
                pids.extend(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:
            if i == 0 and not Path(f"/proc/{pid}/task/{pid}/children").exists():
                return None
        except (OSError, ValueError):
            pass
        i += 1
    return pids


def _group_rss_kb(pgid: int) -> int:
    """Resident memory of the stage (process group leader ``pgid``) and all its descendants.

    Walks the process tree when the kernel lists children (cheap: the bench polls this while
    the stage runs, and scanning all of ``/proc`` cost a few percent of a core); else every
    process in the group."""
    pids = _tree_pids(pgid)
    total = 0
    if pids is not None:
        for pid in pids:
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_KB
            except (OSError, IndexError, ValueError):
                continue
        return total
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 21 and fields[2] == str(pgid):
            total += int(fields[21]) * _PAGE_KB
    return total


def run_stage(
    stage: str, repo: Path, env: dict[str, str], use_gnu_time: bool, limits: Limits = Limits()
) -> Measure:
    """``flywheel <stage>`` in ``repo``: wall seconds and peak RSS; StageError if it fails."""
    global _RUNNING
    logs = repo / ".bench"
    logs.mkdir(exist_ok=True)
    rss_file = logs / f"{stage}.rss"
    cmd = ["flywheel", stage]
    if use_gnu_time:
        cmd = [str(GNU_TIME), "-f", "%M", "-o", str(rss_file), *cmd]
    out_path, err_path = logs / f"{stage}.out", logs / f"{stage}.err"
    peak_kb: int | None = None
    group_peak_kb = group_kb = 0
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = _start(cmd, cwd=repo, env=env, stdout=out, stderr=err)
        try:
            next_check = start
            while True:
                try:
                    proc.wait(timeout=0.02)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if not use_gnu_time:
                    peak_kb = max(peak_kb or 0, _vm_hwm_kb(proc.pid) or 0) or None
                now = time.perf_counter()
                problem = None
                if now >= next_check:
                    # The stage's worker processes together (ingest runs several).
                    next_check = now + 0.25
                    group_kb = _group_rss_kb(proc.pid)
                    group_peak_kb = max(group_peak_kb, group_kb)
                if limits.seconds is not None and now - start > limits.seconds:
                    problem = f"took over {limits.seconds:g} s (--stage-timeout)"
                elif limits.rss_mb is not None and group_kb > limits.rss_mb * 1024:
                    problem = f"held over {limits.rss_mb:,.0f} MB (--max-rss-mb)"
                if problem:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    raise StageError(f"flywheel {stage} {problem}; stopped it.")
        finally:
            _RUNNING = None
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        output = out_path.read_text(errors="replace")[-4000:]
        errors = err_path.read_text(errors="replace")[-8000:]
        raise StageError(
            f"flywheel {stage} failed in {repo} (exit {proc.returncode}).\n"
            f"--- stdout (end) ---\n{output}\n--- stderr (end) ---\n{errors}"
        )
    if use_gnu_time:
        text = rss_file.read_text().strip().splitlines()
        peak_kb = int(text[-1]) if text and text[-1].strip().isdigit() else None
    if group_peak_kb:
        peak_kb = max(peak_kb or 0, group_peak_kb)
    return Measure(stage, seconds, None if peak_kb is None else peak_kb / 1024)


def run_stages(
    stages: tuple[str, ...],
    repo: Path,
    env: dict[str, str],
    use_gnu_time: bool,
    limits: Limits,
    label: str,
) -> list[Measure]:
    out = []
    for stage in stages:
        m = run_stage(stage, repo, env, use_gnu_time, limits)
        rss = "?" if m.rss_mb is None else f"{m.rss_mb:,.0f} MB"
        print(f"  {label:<11} {stage:<10} {m.seconds:9.2f} s  {rss:>10}", flush=True)
        out.append(m)
    return out


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def make_records(args: list[str]) -> str:
    """Run make_records.py (in its own process group, so an interrupt stops its workers too)."""
    global _RUNNING
    cmd = [sys.executable, str(MAKE_RECORDS), *args]
    with _start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            out, err = proc.communicate()
        finally:
            _RUNNING = None
    if proc.returncode != 0:
        raise StageError(
            f"make_records.py {' '.join(args)} failed (exit {proc.returncode}):\n{out}{err}"
        )
    return str(out).strip()


def fresh_copy(src: Path, dst: Path) -> None:
    """A copy of the generated inputs; hard links where the file system allows (the stages
    never modify an input, and make_records replaces rather than rewrites its metadata)."""
    try:
        shutil.copytree(src, dst, copy_function=os.link)
    except OSError:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)


def input_rows(repo: Path) -> int:
    meta = json.loads((repo / "make_records.json").read_text())
    return sum(sum(r["exports"].values()) for r in meta["rounds"])


def ledger_rows(repo: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_metadata(repo / "data" / "ledger.parquet").num_rows)


def summary_line(repo: Path) -> str:
    """A few of the stages' own counts, to show the run did real work."""

    def metric(stage: str) -> dict[str, Any]:
        path = repo / "metrics" / f"{stage}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    ingest, dedup, queue, split = (metric(s) for s in ("ingest", "dedup", "queue", "split"))
    return (
        f"records {ingest.get('records', '?'):,}, quarantined {ingest.get('quarantined', '?')}, "
        f"duplicates {dedup.get('duplicates', '?')}, queued {queue.get('queued', '?')}, "
        f"train {split.get('train', '?')}, eval {split.get('eval', '?')}"
    )


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _data_seconds(measures: list[Measure]) -> float:
    return sum(m.seconds for m in measures if m.stage in DATA_STAGES)


def _data_peak(measures: list[Measure]) -> float | None:
    known = [m.rss_mb for m in measures if m.stage in DATA_STAGES and m.rss_mb is not None]
    return max(known) if known else None


def report(repeats: list[Repeat], records: int, rows: int, method: str) -> dict[str, Any]:
    """Print the table of medians; return the same figures as a dict."""

    def med(which: str, stage: str, attr: str) -> float | None:
        return _median(
            [getattr(m, attr) for r in repeats for m in getattr(r, which) if m.stage == stage]
        )

    def line(name: str, cells: list[float | None]) -> None:
        specs = (".2f", ",.0f", ".2f", ",.0f")
        print(
            f"{name:<26}" + "".join(f"{_fmt(v, f):>10}" for v, f in zip(cells, specs, strict=True))
        )

    table: dict[str, dict[str, float | None]] = {
        stage: {
            "full_s": med("full", stage, "seconds"),
            "full_rss_mb": med("full", stage, "rss_mb"),
            "incremental_s": med("incremental", stage, "seconds"),
            "incremental_rss_mb": med("incremental", stage, "rss_mb"),
        }
        for stage in DATA_STAGES + OTHER_STAGES
    }
    full = _median([_data_seconds(r.full) for r in repeats])
    incr = _median([_data_seconds(r.incremental) for r in repeats if r.incremental])
    rss = _median([_data_peak(r.full) for r in repeats])
    incr_rss = _median([_data_peak(r.incremental) for r in repeats if r.incremental])
    ratios = [_data_seconds(r.incremental) / _data_seconds(r.full) for r in repeats if r.full]
    ratio = _median(list(ratios))
    appended = _median([float(r.appended_records) for r in repeats])

    n = len(repeats)
    print()
    print(
        f"{records:,} records ({rows:,} input rows); medians of {n} repeat{'s' * (n != 1)}; "
        f"peak RSS by {method}"
    )
    head = f"{'stage':<26}{'full s':>10}{'full MB':>10}{'incr s':>10}{'incr MB':>10}"
    print(head)
    print("-" * len(head))
    for stage in DATA_STAGES:
        line(stage, list(table[stage].values()))
    print("-" * len(head))
    line("data stages", [full, rss, incr, incr_rss])
    print("-" * len(head))
    for stage in OTHER_STAGES:
        line(stage + " (not in total)", list(table[stage].values()))
    goal_time = full is not None and full <= GOAL_SECONDS
    goal_rss = rss is not None and rss <= GOAL_RSS_MB
    goal_ratio = ratio is not None and ratio <= GOAL_RATIO
    print()
    at = (
        ""
        if records == 1_000_000
        else f"; the goals are set for 1,000,000, this run has {records:,}"
    )
    print(f"goals (data stages, full rebuild{at}):")
    print(
        f"  time      {_fmt(full, '8.1f')} s    goal <= {GOAL_SECONDS:.0f} s       "
        f"{'met' if goal_time else 'MISSED'}"
    )
    print(
        f"  peak RSS  {_fmt(rss, '8,.0f')} MB   goal <= {GOAL_RSS_MB:,.0f} MB   "
        f"{'met' if goal_rss else 'MISSED'}"
    )
    print(
        f"  incremental round (+{_fmt(appended, ',.0f')} records): {_fmt(incr, '.1f')} s, "
        f"{_fmt(None if ratio is None else 100 * ratio, '.0f')}% of the full rebuild "
        f"(median of per-repeat ratios {', '.join(f'{r:.2f}' for r in ratios)}); "
        f"goal <= {100 * GOAL_RATIO:.0f}%   {'met' if goal_ratio else 'MISSED'}"
    )
    return {
        "records": records,
        "input_rows": rows,
        "repeats": n,
        "rss_method": method,
        "stages": table,
        "full_data_stages_s": full,
        "full_peak_rss_mb": rss,
        "incremental_records": appended,
        "incremental_data_stages_s": incr,
        "incremental_ratio": ratio,
        "goals_met": {"time": goal_time, "rss": goal_rss, "incremental": goal_ratio},
        "raw": [asdict(r) for r in repeats],
    }


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(__doc__ or "").split("\n\n", 1)[1],
    )
    parser.add_argument("--records", type=int, default=None, help="default 1,000,000")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_RECORDS:,} records (unless --records)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="default 1 at 500,000 records or more, else 3"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the full rebuild")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--percent", type=float, default=1.0, help="size of the appended round")
    parser.add_argument(
        "--stage-timeout", type=float, default=None, help="stop a stage after this many seconds"
    )
    parser.add_argument(
        "--max-rss-mb",
        type=float,
        default=16_000,
        help="stop a stage whose processes hold more than this (default 16,000 MB)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--check-goals", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    records = args.records or (QUICK_RECORDS if args.quick else 1_000_000)
    repeats = args.repeats or (1 if records >= 500_000 else 3)

    signal.signal(signal.SIGTERM, _stop_running)
    signal.signal(signal.SIGINT, _stop_running)
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    use_gnu_time = gnu_time_works()
    method = (
        "GNU time %M (largest process)"
        if use_gnu_time
        else "VmHWM polled every 20 ms (a lower bound)"
    ) + " or the summed RSS of the stage's processes polled every 250 ms, whichever is larger"
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench_pipeline.", dir=args.workdir))
    try:
        inputs = work / "inputs"
        start = time.perf_counter()
        line = make_records(
            [
                *("--out", str(inputs), "--records", str(records)),
                *("--rounds", str(args.rounds), "--seed", str(args.seed)),
            ]
        )
        print(f"inputs: {line} (make_records, {time.perf_counter() - start:.1f} s, not timed)")
        rows = input_rows(inputs)
        results = []
        for k in range(repeats):
            repo = work / f"run-{k + 1}"
            fresh_copy(inputs, repo)
            rep = Repeat()
            print(f"repeat {k + 1}/{repeats}: {repo}", flush=True)
            t = Limits(args.stage_timeout, args.max_rss_mb)
            rep.full = run_stages(DATA_STAGES + OTHER_STAGES, repo, env, use_gnu_time, t, "full")
            if ledger_rows(repo) != rows:
                print(
                    f"error: the ledger has {ledger_rows(repo):,} rows but {rows:,} input rows "
                    "were generated",
                    file=sys.stderr,
                )
                return 1
            print(f"  full: {summary_line(repo)}")
            line = make_records(
                ["--out", str(repo), "--append-round", "--percent", str(args.percent)]
            )
            meta = json.loads((repo / "make_records.json").read_text())
            rep.appended_records = int(meta["rounds"][-1]["records"])
            print(f"  appended: {line}")
            rep.incremental = run_stages(DATA_STAGES, repo, env, use_gnu_time, t, "incremental")
            print(f"  incremental: {summary_line(repo)}")
            results.append(rep)
            if not args.keep:
                shutil.rmtree(repo, ignore_errors=True)
        figures = report(results, records, rows, method)
    except StageError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    if args.check_goals and not all(figures["goals_met"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
