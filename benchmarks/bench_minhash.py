"""Time flywheel.minhash against datasketch on the same corpus, shingles, num_perm and threshold.

    .venv/bin/python benchmarks/bench_minhash.py                     # 100,000 records, then 1M ours
    .venv/bin/python benchmarks/bench_minhash.py --quick             # 30,000 records, fewer repeats
    .venv/bin/python benchmarks/bench_minhash.py --n 50000 --million 0
    .venv/bin/python benchmarks/bench_minhash.py --n 100000 --repeats 5 --peer-repeats 3

Corpus: the 13,083 BANKING77 queries (tests/data/banking77) followed by seeded perturbed copies
(1-4 word insertions, deletions, swaps or typos each; ``perturbed_corpus`` in
tests/test_minhash.py, the corpus the tests check) up to ``--n`` records: short customer-support
texts with many near-duplicates.

Both sides get the same shingle sets (character 5-grams of the normalized text; datasketch gets
each record's set as UTF-8 bytes), 128 permutations, threshold 0.8 and the same LSH bands and
rows (datasketch's ``MinHashLSH`` derives them from the same weights; checked).

- datasketch: ``MinHash.bulk`` (shared permutations, ``update_batch`` per record) +
  ``MinHashLSH`` insertion session + one ``query`` per record, from prepared shingle byte lists:
  the ratio leaves out the Python that builds those lists from the texts, which favours
  datasketch; a second ratio, from raw text on both sides, adds it.
- ours: ``signatures`` (normalize, shingle, hash, permute, from raw text) + ``candidate_pairs`` +
  ``verify`` by estimated Jaccard. Listed separately, not in the ratio: ``sketch`` + ``verify``
  with exact Jaccard near the threshold, ``clusters``, and ``signatures`` on two threads.

Recall and precision are measured against exact Jaccard of the string shingle sets on the pairs
that touch a random sample of records (the exact join over all 100,000 takes 80 s in Python).
Times are medians of the repeats, single-threaded unless stated.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import TypeVar

import numpy as np
from datasketch import MinHash, MinHashLSH  # type: ignore[import-untyped]
from timing import median_time

from flywheel import minhash as mh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_minhash import (
    banking77_texts,
    exact_pairs,
    perturbed_corpus,
    reference_shingles,
)

T = TypeVar("T")
Pairs = set[tuple[int, int]]


def ours(texts: list[str], threshold: float) -> np.ndarray:
    sigs = mh.signatures(texts)
    bands, rows = mh.lsh_params(threshold, sigs.shape[1])
    return mh.verify(sigs, mh.candidate_pairs(sigs, bands, rows), threshold)


def ours_exact(texts: list[str], threshold: float) -> np.ndarray:
    sigs, shingles = mh.sketch(texts)
    bands, rows = mh.lsh_params(threshold, sigs.shape[1])
    return mh.verify(sigs, mh.candidate_pairs(sigs, bands, rows), threshold, shingles=shingles)


def datasketch_shingles(texts: list[str]) -> list[list[bytes]]:
    """The shingle sets the tests define, as datasketch wants them: a list of bytes per record."""
    return [[s.encode() for s in reference_shingles(t)] for t in texts]


def datasketch_run(
    shingles: list[list[bytes]], threshold: float, num_perm: int, bands_rows: tuple[int, int]
) -> tuple[Pairs, list[MinHash]]:
    sketches = MinHash.bulk(shingles, num_perm=num_perm, seed=1)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=mh.DEFAULT_LSH_WEIGHTS)
    if (lsh.b, lsh.r) != bands_rows:
        raise SystemExit(f"datasketch chose bands, rows {lsh.b, lsh.r}, ours {bands_rows}")
    with lsh.insertion_session() as session:
        for i, sketch in enumerate(sketches):
            session.insert(i, sketch)
    candidates = set()
    for i, sketch in enumerate(sketches):
        for j in lsh.query(sketch):
            if j != i:
                candidates.add((min(i, j), max(i, j)))
    return candidates, sketches


def truth_near(texts: list[str], sample: set[int], threshold: float) -> Pairs:
    """Exact pairs touching ``sample``, from the string shingle sets of all records."""
    sets = [reference_shingles(t) for t in texts]
    return set(exact_pairs(sets, threshold, touching=sorted(sample)))


def scores(found: Pairs, truth: Pairs, sample: set[int]) -> str:
    touching = {p for p in found if p[0] in sample or p[1] in sample}
    hits = len(touching & truth)
    return f"recall {hits / max(len(truth), 1):.3f}, precision {hits / max(len(touching), 1):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="records (default 100,000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of ours")
    parser.add_argument("--peer-repeats", type=int, default=3, help="timed repeats of datasketch")
    parser.add_argument("--sample", type=int, default=5_000, help="records for recall/precision")
    parser.add_argument(
        "--million", type=int, default=1_000_000, help="records for an ours-only run (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--quick", action="store_true", help="30,000 records, 3/1 repeats, no 1M")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeats, args.peer_repeats, args.million = 30_000, 3, 1, 0
    threshold, num_perm = mh.DEFAULT_THRESHOLD, mh.DEFAULT_PARAMS.num_perm
    bands_rows = mh.lsh_params(threshold, num_perm)

    base = banking77_texts("train") + banking77_texts("test")
    texts = perturbed_corpus(base, args.n, args.seed)
    print(
        f"{len(texts):,} records ({len(base):,} BANKING77 queries + perturbed copies), mean "
        f"{statistics.mean(map(len, texts)):.0f} characters; char 5-grams, num_perm {num_perm}, "
        f"threshold {threshold}, bands x rows {bands_rows[0]} x {bands_rows[1]}"
    )

    # Interleaved, so that both see the same load on a shared machine.
    ours_times, peer_times, prep_times = [], [], []
    for repeat in range(max(args.repeats, args.peer_repeats)):
        if repeat < args.repeats:
            start = time.perf_counter()
            pairs = ours(texts, threshold)
            ours_times.append(time.perf_counter() - start)
        if repeat < args.peer_repeats:
            prep_s, shingles = median_time(lambda: datasketch_shingles(texts), 1)
            start = time.perf_counter()
            theirs, sketches = datasketch_run(shingles, threshold, num_perm, bands_rows)
            peer_s = time.perf_counter() - start
            prep_times.append(prep_s)
            peer_times.append(peer_s)
    ours_s, peer_s = statistics.median(ours_times), statistics.median(peer_times)
    prep_s = statistics.median(prep_times)
    theirs_verified = {(i, j) for i, j in theirs if sketches[i].jaccard(sketches[j]) >= threshold}

    sig_s, sigs = median_time(lambda: mh.signatures(texts), args.repeats)
    cand_s, candidates = median_time(lambda: mh.candidate_pairs(sigs, *bands_rows), args.repeats)
    verify_s, _ = median_time(lambda: mh.verify(sigs, candidates, threshold), args.repeats)
    exact_s, pairs_exact = median_time(lambda: ours_exact(texts, threshold), args.repeats)
    cluster_s, labels = median_time(lambda: mh.clusters(len(texts), pairs_exact), args.repeats)
    threads_s, _ = median_time(lambda: mh.signatures(texts, workers=2), args.repeats)

    sample = set(random.Random(args.seed).sample(range(len(texts)), min(args.sample, len(texts))))
    truth = truth_near(texts, sample, threshold)
    print(f"\nmedian of {args.repeats} (ours) and {args.peer_repeats} (datasketch) repeats:")
    print(
        f"  ours:       {ours_s:7.3f} s  {len(texts) / ours_s:9,.0f} records/s  "
        f"(signatures {sig_s:.3f} s, candidate_pairs {cand_s:.3f} s [{len(candidates):,}], "
        f"verify {verify_s:.3f} s [{len(pairs):,} pairs])"
    )
    print(
        f"  datasketch: {peer_s:7.3f} s  {len(texts) / peer_s:9,.0f} records/s  "
        f"(MinHash.bulk + LSH insert + query, from prepared byte shingles)"
    )
    print(f"  ratio datasketch / ours: {peer_s / ours_s:.1f}x")
    both = peer_s + prep_s
    print(
        f"  from raw text on both sides (datasketch + {prep_s:.3f} s of Python normalizing and "
        f"shingling): {len(texts) / both:,.0f} records/s, ratio {both / ours_s:.1f}x"
    )
    print(
        f"  not in the ratio: ours with exact check near the threshold (sketch + candidates + "
        f"verify): {exact_s:.3f} s, {len(texts) / exact_s:,.0f} records/s; clusters "
        f"{cluster_s * 1000:.1f} ms ({len(np.unique(labels)):,} clusters); signatures with "
        f"workers=2: {threads_s:.3f} s"
    )
    found = {(int(i), int(j)) for i, j in pairs}
    found_exact = {(int(i), int(j)) for i, j in pairs_exact}
    print(
        f"\nagainst exact Jaccard >= {threshold}: {len(truth):,} true pairs touch the "
        f"{len(sample):,} sampled records"
    )
    print(f"  ours, estimate:          {scores(found, truth, sample)}")
    print(f"  ours, exact near t:      {scores(found_exact, truth, sample)}")
    print(f"  datasketch candidates:   {scores(theirs, truth, sample)}")
    print(f"  datasketch + jaccard():  {scores(theirs_verified, truth, sample)}")

    if args.million:
        big = perturbed_corpus(base, args.million, args.seed + 1)
        start = time.perf_counter()
        big_sigs = mh.signatures(big)
        sig_done = time.perf_counter()
        big_candidates = mh.candidate_pairs(big_sigs, *bands_rows)
        cand_done = time.perf_counter()
        big_pairs = mh.verify(big_sigs, big_candidates, threshold)
        seconds = time.perf_counter() - start
        print(
            f"\nours at {len(big):,} records (1 run, ~{len(big) // len(base)} copies per query): "
            f"{seconds:.1f} s, {len(big) / seconds:,.0f} records/s (signatures "
            f"{sig_done - start:.1f} s, candidate_pairs {cand_done - sig_done:.1f} s "
            f"[{len(big_candidates):,}], verify {seconds - (cand_done - start):.1f} s "
            f"[{len(big_pairs):,} pairs])"
        )


if __name__ == "__main__":
    main()
