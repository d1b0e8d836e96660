"""Time flywheel.stats.summarize against the reference implementations on the same ratings.

    .venv/bin/python benchmarks/bench_agreement.py              # 1,000,000 items x 5 annotators
    .venv/bin/python benchmarks/bench_agreement.py --quick      # 100,000 items, fewer repeats
    .venv/bin/python benchmarks/bench_agreement.py --items 250000 --repeats 7

The data is seeded and shaped like real annotation: each item has a hidden true label drawn from
a skewed distribution over five ordinal levels "1".."5"; each annotator skips ~15% of items,
copies the true label with probability 0.55-0.85 (annotators differ), and otherwise picks a
neighbouring level or a random one.

Ours: ``summarize(level="ordinal", bootstrap=0)`` (percent agreement, Cohen's kappa unweighted,
linear and quadratic for every pair, Scott's pi, Fleiss' kappa, alpha nominal and ordinal, Gwet's
AC1, per label, per annotator, confusion, confused pairs) plus ``krippendorff_alpha(interval)``
and ``to_dict()``, on a freshly built Ratings each repeat so nothing is cached between repeats.

Peers: statsmodels ``aggregate_raters`` + ``fleiss_kappa``; ``krippendorff.alpha`` at nominal,
ordinal and interval; scikit-learn ``cohen_kappa_score`` unweighted, linear and quadratic for
every annotator pair over the items both rated. statsmodels' Fleiss' kappa requires the same
number of raters on every item, so it aggregates every item and then scores the complete ones
(less work than ours, which scores every item); the values are checked on complete items.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from itertools import combinations
from typing import TypeVar

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
from timing import median_time

from flywheel.stats import Ratings, krippendorff_alpha, summarize
from flywheel.stats import fleiss_kappa as fleiss_kappa_stat

T = TypeVar("T")
LABELS = ("1", "2", "3", "4", "5")
PREVALENCE = np.array([0.55, 0.2, 0.12, 0.08, 0.05])


def make_codes(n_items: int, n_annotators: int, seed: int) -> np.ndarray:
    """Shape (n_items, n_annotators) int32 label codes, -1 = missing (see module docstring)."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(len(LABELS), size=n_items, p=PREVALENCE)
    accuracy = np.linspace(0.85, 0.55, n_annotators)
    codes = np.empty((n_items, n_annotators), dtype=np.int32)
    for j in range(n_annotators):  # a loop over annotators; everything inside is vectorized
        roll = rng.random(n_items)
        near = np.clip(truth + rng.choice([-1, 1], size=n_items), 0, len(LABELS) - 1)
        noise = rng.choice(len(LABELS), size=n_items, p=PREVALENCE)
        label = np.where(roll < accuracy[j], truth, np.where(roll < accuracy[j] + 0.1, near, noise))
        codes[:, j] = np.where(rng.random(n_items) < 0.15, -1, label)
    return codes


def median_time_fresh(
    run: Callable[[Ratings], T], make: Callable[[], Ratings], repeats: int
) -> tuple[float, T]:
    """Like median_time, on a new Ratings each repeat (built outside the timer, nothing cached)."""
    times = []
    for _ in range(repeats):
        ratings = make()
        start = time.perf_counter()
        result = run(ratings)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def ours(ratings: Ratings) -> dict[str, object]:
    report = summarize(ratings, level="ordinal", bootstrap=0)
    interval = krippendorff_alpha(ratings, "interval")
    out = report.to_dict()
    out["alpha_interval"] = interval.value
    return out


def peers(codes: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    # statsmodels' Fleiss needs equal raters per item: aggregate every item, keep complete ones
    table, categories = aggregate_raters(codes)
    complete = table[:, categories < 0].sum(axis=1) == 0
    out["fleiss_kappa"] = float(fleiss_kappa(table[complete][:, categories >= 0]))
    data = np.where(codes >= 0, codes + 1.0, np.nan).T  # coders x units, values 1..5
    for level in ("nominal", "ordinal", "interval"):
        out[f"alpha_{level}"] = float(krippendorff.alpha(data, level_of_measurement=level))
    labels = list(range(len(LABELS)))
    for a, b in combinations(range(codes.shape[1]), 2):
        both = (codes[:, a] >= 0) & (codes[:, b] >= 0)
        for weights in (None, "linear", "quadratic"):
            key = f"kappa_{a}_{b}_{weights or 'none'}"
            out[key] = float(
                cohen_kappa_score(codes[both, a], codes[both, b], labels=labels, weights=weights)
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--items", type=int, default=None, help="items (default 1,000,000; 100,000 with --quick)"
    )
    parser.add_argument("--annotators", type=int, default=5)
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed repeats of ours (default 5, 3 with --quick)",
    )
    parser.add_argument(
        "--peer-repeats",
        type=int,
        default=None,
        help="timed repeats of the peers (default 3, 1 --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args()
    n_items = args.items or (100_000 if args.quick else 1_000_000)
    repeats = args.repeats or (3 if args.quick else 5)
    peer_repeats = args.peer_repeats or (1 if args.quick else 3)

    codes = make_codes(n_items, args.annotators, args.seed)
    annotators = tuple(f"ann{j}" for j in range(args.annotators))
    items = tuple(map(str, range(n_items)))
    print(
        f"{n_items:,} items x {args.annotators} annotators, {int((codes >= 0).sum()):,} ratings "
        f"({(codes < 0).mean():.0%} missing), labels {', '.join(LABELS)}"
    )

    def fresh() -> Ratings:
        return Ratings(codes, LABELS, annotators, items)

    ours_s, result = median_time_fresh(ours, fresh, repeats)
    boot_s, _ = median_time_fresh(
        lambda r: summarize(r, level="ordinal", bootstrap=1000, seed=0), fresh, 1
    )
    peer_s, theirs = median_time(lambda: peers(codes), peer_repeats)

    complete = fresh_complete(codes, annotators)
    alphas = result["krippendorff_alpha"]
    pairs = result["pairs"]
    assert isinstance(alphas, dict)
    assert isinstance(pairs, list)
    print(f"ours  (summarize + alpha interval + to_dict): median {ours_s:.3f} s, {repeats} rep.")
    print(
        f"peers (statsmodels + krippendorff + sklearn): median {peer_s:.3f} s, {peer_repeats} rep."
    )
    print(f"ratio peers / ours: {peer_s / ours_s:.1f}x")
    print(f"(for reference, not compared: summarize with bootstrap=1000 took {boot_s:.3f} s)")
    print("values, ours vs peers:")
    print(f"  alpha nominal  {alphas['nominal']['value']:.6f} vs {theirs['alpha_nominal']:.6f}")
    print(f"  alpha ordinal  {alphas['ordinal']['value']:.6f} vs {theirs['alpha_ordinal']:.6f}")
    print(f"  alpha interval {result['alpha_interval']:.6f} vs {theirs['alpha_interval']:.6f}")
    kappa = pairs[0]["cohen_kappa"]["value"]
    print(f"  kappa ann0~ann1 {kappa:.6f} vs {theirs['kappa_0_1_none']:.6f}")
    print(f"  Fleiss on complete items {complete:.6f} vs {theirs['fleiss_kappa']:.6f}")


def fresh_complete(codes: np.ndarray, annotators: tuple[str, ...]) -> float:
    rows = codes[(codes >= 0).all(axis=1)]
    value = fleiss_kappa_stat(Ratings(rows, LABELS, annotators, tuple(map(str, range(len(rows))))))
    return float("nan") if value.value is None else value.value


if __name__ == "__main__":
    main()
