"""Tests for flywheel.minhash and flywheel.unionfind: near-duplicates against exact Jaccard.

The oracles here are independent of the code under test: normalization and shingles are the
pure-Python definitions on strings (no hashing), and the exact near-duplicate pairs come from a
complete set-similarity join (prefix filtering) over those string shingle sets.

The corpus helpers (``banking77_texts``, ``perturbed_corpus``, ``exact_pairs``) are also used by
``benchmarks/bench_minhash.py``, so the benchmark measures the corpus the tests check.
"""

from __future__ import annotations

import csv
import itertools
import math
import random
import re
import string
import subprocess
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel import lsh
from flywheel import minhash as mh
from flywheel.errors import ConfigError, InputError
from flywheel.unionfind import clusters

BANKING77 = Path(__file__).parent / "data" / "banking77"


# --- corpus and oracles ---------------------------------------------------------------------


def banking77_texts(split: str) -> list[str]:
    """The ``text`` column of tests/data/banking77/{split}.csv (train: 10,003, test: 3,080)."""
    with (BANKING77 / f"{split}.csv").open(encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) + 1)
    kind = rng.choice(("substitute", "delete", "insert", "transpose"))
    if kind == "insert" or len(word) < 2:
        return word[:i] + rng.choice(string.ascii_lowercase) + word[i:]
    i = min(i, len(word) - 2)
    if kind == "substitute":
        return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1 :]
    if kind == "delete":
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def perturb(text: str, edits: int, rng: random.Random, vocabulary: Sequence[str]) -> str:
    """``edits`` random word-level edits: typo (twice as likely), insertion, deletion, swap."""
    words = text.split() or [""]
    for _ in range(edits):
        kind = rng.choice(("typo", "typo", "insert", "delete", "swap"))
        i = rng.randrange(len(words))
        if kind == "typo":
            words[i] = _typo(words[i], rng)
        elif kind == "insert":
            words.insert(i, rng.choice(vocabulary))
        elif kind == "delete" and len(words) > 1:
            del words[i]
        elif kind == "swap" and len(words) > 1:
            j = min(i, len(words) - 2)
            words[j], words[j + 1] = words[j + 1], words[j]
    out = " ".join(words)
    if rng.random() < 0.2:  # cosmetic only: normalize() has to undo it
        out = rng.choice(("  ", "\n", "\t")) + out.upper() + " "
    return out


def perturbed_corpus(texts: Sequence[str], size: int, seed: int) -> list[str]:
    """``texts`` followed by perturbed copies of random ones until there are ``size`` records.

    Each copy gets 1, 2, 3 or 4 edits (1 and 2 twice as likely). On BANKING77 one edit leaves
    a median character 5-gram Jaccard of 0.78 to the original (quartiles 0.70-0.86), two edits
    0.64, and copies of one text are compared with each other too, so pairs crowd both sides of
    the 0.8 threshold, with some far above it.
    """
    rng = random.Random(seed)
    vocabulary = sorted({word for text in texts for word in text.split()})
    out = list(texts[:size])
    while len(out) < size:
        out.append(perturb(rng.choice(texts), rng.choice((1, 1, 2, 2, 3, 4)), rng, vocabulary))
    return out


def reference_normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def reference_shingles(text: str, kind: str = "char", k: int = 5) -> set[str]:
    """The shingles as strings: the definition ``flywheel.minhash`` hashes."""
    norm = reference_normalize(text)
    units: Sequence[str] = norm if kind == "char" else (norm.split(" ") if norm else [])
    glue = "" if kind == "char" else " "
    return {glue.join(units[i : i + k]) for i in range(max(len(units) - k + 1, 1))}


def exact_pairs(
    sets: Sequence[set[str]], threshold: float, touching: Collection[int] | None = None
) -> dict[tuple[int, int], float]:
    """Every pair ``(i, j)``, ``i < j``, with Jaccard >= threshold, and its Jaccard; with
    ``touching``, only the pairs that include one of those records (much faster).

    Prefix filtering (Chaudhuri et al. 2006): order each set by global rarity; two sets with
    Jaccard >= t share an element among the first ``|s| - ceil(t |s|) + 1`` of each, so the
    candidates are complete, and each is checked exactly.
    """
    frequency: dict[str, int] = defaultdict(int)
    for shingles in sets:
        for shingle in shingles:
            frequency[shingle] += 1
    prefixes = []
    index: dict[str, list[int]] = defaultdict(list)
    for j, shingles in enumerate(sets):
        ordered = sorted(shingles, key=lambda s: (frequency[s], s))
        prefixes.append(ordered[: len(ordered) - math.ceil(threshold * len(ordered) - 1e-9) + 1])
        for shingle in prefixes[-1]:
            index[shingle].append(j)
    found: dict[tuple[int, int], float] = {}
    for i in range(len(sets)) if touching is None else touching:
        for j in {j for shingle in prefixes[i] for j in index[shingle]}:
            if j == i or (touching is None and j < i):
                continue
            shared = len(sets[i] & sets[j])
            jaccard = shared / (len(sets[i]) + len(sets[j]) - shared)
            if jaccard >= threshold:
                found[(min(i, j), max(i, j))] = jaccard
    return found


def as_set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in pairs}


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """9,000 records: 3,000 BANKING77 queries and 6,000 perturbed copies of them."""
    texts = banking77_texts("train") + banking77_texts("test")
    return perturbed_corpus(random.Random(0).sample(texts, 3000), 9000, seed=1)


@pytest.fixture(scope="module")
def corpus_truth(corpus: list[str]) -> dict[tuple[int, int], float]:
    """Exact Jaccard of every corpus pair at or above 0.7 (to see both sides of 0.8)."""
    return exact_pairs([reference_shingles(text) for text in corpus], 0.7)


# --- normalization and shingles -------------------------------------------------------------

TRICKY = " \t\n\x0b\x1c\xa0\u2003\u3000\u0085AbZßİﬁΣ\u03c3\u03c2é\u0301ǰ£€…"
texts_strategy = st.lists(
    st.text(st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8")), max_size=30),
    max_size=8,
)


def test_normalize_matches_the_definition_on_banking77() -> None:
    texts = banking77_texts("train") + banking77_texts("test")
    assert mh.normalize(texts).to_pylist() == [reference_normalize(t) for t in texts]


@settings(deadline=None)  # timing varies on shared machines; the properties do not
@given(texts_strategy)
def test_normalize_matches_the_definition(texts: list[str]) -> None:
    assert mh.normalize(texts).to_pylist() == [reference_normalize(t) for t in texts]


@settings(deadline=None)
@given(texts_strategy)
def test_normalize_is_idempotent(texts: list[str]) -> None:
    once = mh.normalize(texts)
    assert mh.normalize(once).to_pylist() == once.to_pylist()


def test_normalize_accepts_arrow_input_and_slices() -> None:
    arr = pa.array(["x", "  Mixed\tCase  ", "Straße", "tail "]).slice(1, 3)
    assert mh.normalize(arr).to_pylist() == ["mixed case", "strasse", "tail"]
    chunked = pa.chunked_array([["A  b"], ["C"]], type=pa.large_string())
    assert mh.normalize(chunked).to_pylist() == ["a b", "c"]


@pytest.mark.parametrize(("kind", "k"), [("char", 5), ("char", 3), ("word", 1), ("word", 2)])
def test_hashed_shingles_match_string_shingles_on_banking77(kind: str, k: int) -> None:
    texts = banking77_texts("test")
    hashed = mh.shingle_sets(texts, mh.MinHashParams(shingle=kind, k=k))  # type: ignore[arg-type]
    assert [len(s) for s in hashed] == [len(reference_shingles(t, kind, k)) for t in texts]


@settings(max_examples=200, deadline=None)
@given(
    texts_strategy.filter(lambda texts: len(texts) >= 2),
    st.sampled_from(["char", "word"]),
    st.integers(1, 6),
)
def test_hashed_shingle_sets_have_the_structure_of_string_sets(
    texts: list[str], kind: str, k: int
) -> None:
    hashed = mh.shingle_sets(texts, mh.MinHashParams(shingle=kind, k=k))  # type: ignore[arg-type]
    strings = [reference_shingles(t, kind, k) for t in texts]
    assert [len(s) for s in hashed] == [len(s) for s in strings]
    for i in range(len(texts) - 1):
        assert len(hashed[i] & hashed[i + 1]) == len(strings[i] & strings[i + 1])


def reference_shingle_hash(shingle: str) -> int:
    """The documented hash of one shingle, in Python integers: the polynomial hash of its UTF-8
    bytes (+1 each) modulo 2**64, MurmurHash3's fmix64, the top 32 bits."""
    mask, base, h = (1 << 64) - 1, 0x9E3779B97F4A7C15, 0
    for position, byte in enumerate(shingle.encode("utf-8")):
        h = (h + (byte + 1) * pow(base, position, 1 << 64)) & mask
    for multiplier in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
        h = ((h ^ (h >> 33)) * multiplier) & mask
    return (h ^ (h >> 33)) >> 32


@settings(max_examples=100, deadline=None)
@given(texts_strategy, st.sampled_from(["char", "word"]), st.integers(1, 5))
def test_shingle_hashes_are_the_documented_hash_of_each_shingle(
    texts: list[str], kind: str, k: int
) -> None:
    """Bit for bit: stored signatures stay comparable only while these hashes do not change."""
    hashed = mh.shingle_sets(texts, mh.MinHashParams(shingle=kind, k=k))  # type: ignore[arg-type]
    expected = [{reference_shingle_hash(s) for s in reference_shingles(t, kind, k)} for t in texts]
    assert hashed == expected


def test_short_and_empty_texts_are_one_shingle() -> None:
    shingles = mh.shingle_hashes(["", "abc", "abcdef", "", "   "])
    assert np.diff(shingles.offsets).tolist() == [1, 1, 2, 1, 1]
    assert shingles.hashes[0] == shingles.hashes[4] == shingles.hashes[5]  # all the empty text


# --- signatures -----------------------------------------------------------------------------


def test_signatures_are_pinned_for_the_scheme_version() -> None:
    """If this fails, stored signatures no longer compare: bump SCHEME_VERSION on purpose."""
    assert mh.SCHEME_VERSION == "flywheel-minhash-1"
    assert mh.signatures(["Where is my card?"])[0, :6].tolist() == [
        249578065,
        127372822,
        163063679,
        105257898,
        411261575,
        441124664,
    ]
    words = mh.MinHashParams(shingle="word", k=2, seed=7, num_perm=16)
    assert mh.signatures(["Where is my card?"], words)[0, :3].tolist() == [
        686469447,
        1652969963,
        1187910787,
    ]


def test_signatures_are_deterministic_and_seeded(corpus: list[str]) -> None:
    texts = corpus[:2000]
    first = mh.signatures(texts)
    assert first.shape == (2000, 128)
    assert first.dtype == np.uint32
    assert np.array_equal(first, mh.signatures(list(texts)))
    other_seed = mh.signatures(texts, mh.MinHashParams(seed=2))
    assert (first != other_seed).mean() > 0.99


def test_signatures_do_not_depend_on_batching(corpus: list[str]) -> None:
    texts = [*corpus[:300], "", "Straße  NEU", "  ", "ﬁne €5"]
    whole = mh.signatures(texts)
    assert np.array_equal(whole, mh.signatures(texts, batch_size=7))
    assert np.array_equal(whole, mh.signatures(texts, batch_size=1))
    assert np.array_equal(whole, mh.signatures(texts, batch_size=50, workers=2))
    sigs, shingles = mh.sketch(texts, batch_size=5)
    assert np.array_equal(whole, sigs)
    assert np.array_equal(shingles.hashes, mh.shingle_hashes(texts).hashes)


def test_texts_equal_after_normalization_get_equal_signatures() -> None:
    sigs = mh.signatures(["Top-up  failed", "\ttop-up failed\n", "TOP-UP FAILED", "top-up failes"])
    assert np.array_equal(sigs[0], sigs[1])
    assert np.array_equal(sigs[0], sigs[2])
    assert not np.array_equal(sigs[0], sigs[3])


def test_signature_estimates_are_unbiased(
    corpus: list[str], corpus_truth: dict[tuple[int, int], float]
) -> None:
    """The estimated Jaccard is unbiased with binomial spread, on random pairs (Jaccard near 0)
    and on the corpus's similar pairs (0.7 to 1)."""
    sets = mh.shingle_sets(corpus)
    random_pairs = np.random.default_rng(0).integers(0, len(corpus), size=(3000, 2))
    pairs = np.concatenate([random_pairs, np.array(sorted(corpus_truth), dtype=np.int64)])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    exact = np.array([mh.exact_jaccard(sets[i], sets[j]) for i, j in pairs])
    estimate = mh.estimated_jaccard(mh.signatures(corpus), pairs)
    error = estimate - exact
    assert abs(error.mean()) < 0.005
    assert abs(error[exact >= 0.7].mean()) < 0.005
    spread = np.sqrt(exact * (1 - exact) / 128)
    assert np.mean(np.abs(error) <= 3 * spread + 1e-9) > 0.99


def test_signatures_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="missing values, the first at row 1"):
        mh.signatures(pa.array(["a", None]))
    with pytest.raises(ValueError, match="not one string"):
        mh.signatures("one text")
    with pytest.raises(ValueError, match="must be strings"):
        mh.signatures(pa.array([1, 2]))
    with pytest.raises(ValueError, match="recompute all signatures"):
        mh.signatures(["a"], mh.MinHashParams(scheme="flywheel-minhash-0"))
    assert mh.signatures([]).shape == (0, 128)


# --- LSH ------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [(0.5, 0.5), mh.DEFAULT_LSH_WEIGHTS])
@pytest.mark.parametrize("num_perm", [16, 64, 128, 256])
@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9])
def test_lsh_params_match_datasketch(
    threshold: float, num_perm: int, weights: tuple[float, float]
) -> None:
    datasketch_lsh = pytest.importorskip("datasketch.lsh")
    expected = datasketch_lsh._optimal_param(threshold, num_perm, *weights)
    assert mh.lsh_params(threshold, num_perm, *weights) == expected


def test_lsh_params_reject_bad_input() -> None:
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\]"):
        mh.lsh_params(0.0, 128)
    with pytest.raises(ValueError, match="num_perm must be a positive integer"):
        mh.lsh_params(0.8, 0)
    with pytest.raises(ValueError, match="not both zero"):
        mh.lsh_params(0.8, 128, 0.0, 0.0)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda rows: st.tuples(
            st.just(rows),
            st.integers(1, 4),
            st.integers(0, 25),
            st.integers(0, 2**32 - 1),
        )
    )
)
def test_candidate_pairs_are_exactly_the_band_collisions(case: tuple[int, int, int, int]) -> None:
    rows, bands, n, seed = case
    # values from {0, 1} so that bands collide often
    sigs = np.random.default_rng(seed).integers(0, 2, size=(n, bands * rows + 1), dtype=np.uint32)
    expected = {
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        for band in range(bands)
        if np.array_equal(
            sigs[i, band * rows : (band + 1) * rows], sigs[j, band * rows : (band + 1) * rows]
        )
    }
    found = mh.candidate_pairs(sigs, bands, rows, max_bucket=max(n, 2))
    assert as_set(found) == expected
    assert found.dtype == np.int64
    assert found.shape == (len(expected), 2)
    assert np.array_equal(found, np.unique(found, axis=0))


def test_giant_buckets_are_capped_but_stay_connected() -> None:
    rng = np.random.default_rng(0)
    template = rng.integers(0, 2**32, size=64, dtype=np.uint32)
    sigs = np.tile(template, (3000, 1))
    sigs[::3, 40:] = rng.integers(0, 2**32, size=(1000, 24), dtype=np.uint32)  # a third differ
    pairs = mh.candidate_pairs(sigs, 4, 8, max_bucket=10)
    assert len(pairs) <= 3000 * 9 * 4  # not 3000 * 2999 / 2
    identical = mh.verify(sigs, pairs, 1.0)
    labels = clusters(3000, identical)
    same = np.flatnonzero(np.arange(3000) % 3 != 0)
    assert (labels[same] == same[0]).all()  # all 2000 identical signatures form one cluster


def test_candidate_pairs_reject_bad_bands() -> None:
    sigs = np.zeros((3, 16), dtype=np.uint32)
    with pytest.raises(ValueError, match="bands\\*rows <= num_perm=16"):
        mh.candidate_pairs(sigs, 5, 4)
    with pytest.raises(ValueError, match="uint32 array of shape"):
        mh.candidate_pairs(sigs.astype(np.int64), 4, 4)
    assert mh.candidate_pairs(np.zeros((0, 16), dtype=np.uint32), 4, 4).shape == (0, 2)


# --- precision and recall against exact Jaccard ---------------------------------------------


def test_corpus_has_pairs_near_and_far_from_the_threshold(
    corpus_truth: dict[tuple[int, int], float],
) -> None:
    """Guards the next tests from passing on an easy corpus."""
    jaccard = np.array(list(corpus_truth.values()))
    assert np.sum(jaccard >= 0.95) >= 100  # far above
    assert np.sum((jaccard >= 0.8) & (jaccard < 0.85)) >= 400  # just above
    assert np.sum((jaccard >= 0.75) & (jaccard < 0.8)) >= 300  # just below


def precision_recall(found: np.ndarray, truth: set[tuple[int, int]]) -> tuple[float, float]:
    hits = len(as_set(found) & truth)
    return hits / max(len(found), 1), hits / len(truth)


def test_near_duplicates_with_exact_check_reach_precision_and_recall(
    corpus: list[str], corpus_truth: dict[tuple[int, int], float]
) -> None:
    truth = {pair for pair, jaccard in corpus_truth.items() if jaccard >= mh.DEFAULT_THRESHOLD}
    sigs, shingles = mh.sketch(corpus)
    found = mh.near_duplicates(sigs, shingles=shingles)
    precision, recall = precision_recall(found, truth)
    assert precision >= 0.95
    assert recall >= 0.95


def test_estimate_only_verification_errs_only_near_the_threshold(
    corpus: list[str], corpus_truth: dict[tuple[int, int], float]
) -> None:
    """Without shingles the estimate decides, and its standard error (0.035 at J = 0.8 with 128
    permutations) blurs pairs within a few hundredths of the threshold; on this corpus, where
    42% of the true pairs lie in [0.8, 0.85), that costs 12-15 points of precision and recall
    (measured 0.85 and 0.88). Away from the threshold it is right."""
    truth = {pair for pair, jaccard in corpus_truth.items() if jaccard >= mh.DEFAULT_THRESHOLD}
    sigs = mh.signatures(corpus)
    found = mh.near_duplicates(sigs)
    precision, recall = precision_recall(found, truth)
    assert precision >= 0.8
    assert recall >= 0.8
    found_set = as_set(found)
    far_above = {p for p, j in corpus_truth.items() if j >= mh.DEFAULT_THRESHOLD + 0.1}
    assert len(far_above - found_set) <= 0.01 * len(far_above)
    near_below = {p for p, j in corpus_truth.items() if j < mh.DEFAULT_THRESHOLD - 0.1}
    assert len(near_below & found_set) <= 0.01 * len(near_below)


def test_banking77_train_test_overlap_is_found() -> None:
    """SOURCE.txt: 9 texts appear in both train and test after lowercasing and deleting all but
    [0-9a-z] and whitespace; find them as cross pairs (those equal after normalize() at 1.0)."""
    train, test = banking77_texts("train"), banking77_texts("test")

    def key(text: str) -> str:
        return re.sub(r"[^0-9a-z\s]", "", text.lower()).strip()

    by_key = defaultdict(list)
    for i, text in enumerate(train):
        by_key[key(text)].append(i)
    overlap = {(i, len(train) + j) for j, t in enumerate(test) for i in by_key.get(key(t), [])}
    assert len({j for _, j in overlap}) == 9
    texts = train + test
    sigs, shingles = mh.sketch(texts)
    found = as_set(mh.near_duplicates(sigs, shingles=shingles))
    estimate_only = as_set(mh.near_duplicates(sigs))
    jaccard = {
        (i, j): mh.exact_jaccard(reference_shingles(texts[i]), reference_shingles(texts[j]))
        for i, j in overlap
    }
    identical = {pair for pair, value in jaccard.items() if value == 1.0}
    assert len(identical) == 6
    assert identical <= estimate_only
    assert {pair for pair, value in jaccard.items() if value >= mh.DEFAULT_THRESHOLD} <= found
    assert overlap <= found  # all 9 are near-duplicates at 0.8 (their Jaccard is 0.88 or more)


def test_exact_jaccard_pairs_match_python_sets(corpus: list[str]) -> None:
    texts = corpus[:500]
    shingles = mh.shingle_hashes(texts)
    sets = mh.shingle_sets(texts)
    pairs = np.random.default_rng(1).integers(0, 500, size=(2000, 2))
    expected = [mh.exact_jaccard(sets[i], sets[j]) for i, j in pairs]
    assert np.array_equal(mh.exact_jaccard_pairs(shingles, pairs), expected)
    assert mh.exact_jaccard(set(), set()) == 1.0


def test_word_shingles_find_reordered_near_duplicates() -> None:
    params = mh.MinHashParams(shingle="word", k=1)
    texts = [
        "please cancel the transfer i made this morning to my landlord",
        "the transfer i made this morning to my landlord please cancel",
        "how do i order a new physical card for my account",
    ]
    sigs, shingles = mh.sketch(texts, params)
    assert as_set(mh.near_duplicates(sigs, 0.9, shingles=shingles)) == {(0, 1)}


# --- clusters -------------------------------------------------------------------------------


def reference_components(n: int, edges: list[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for u, v in edges:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    return [find(x) for x in range(n)]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 60).flatmap(
        lambda n: st.tuples(
            st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)))
        )
    )
)
def test_clusters_are_the_connected_components(case: tuple[int, list[tuple[int, int]]]) -> None:
    n, edges = case
    labels = clusters(n, np.array(edges, dtype=np.int64).reshape(-1, 2))
    assert labels.dtype == np.int64
    assert labels.tolist() == reference_components(n, edges)
    reversed_edges = np.array([(v, u) for u, v in reversed(edges)], dtype=np.int64).reshape(-1, 2)
    assert np.array_equal(clusters(n, reversed_edges), labels)


def test_clusters_on_a_long_chain() -> None:
    n = 100_000
    order = np.random.default_rng(0).permutation(n)
    labels = clusters(n, np.stack([order[:-1], order[1:]], axis=1))
    assert (labels == 0).all()


def test_clusters_reject_bad_pairs() -> None:
    with pytest.raises(ValueError, match=r"refer to node 5, outside 0\.\.4"):
        clusters(5, [[0, 5]])
    with pytest.raises(ValueError, match=r"shape \(m, 2\)"):
        clusters(5, [[0, 1, 2]])
    assert clusters(3, np.zeros((0, 2), dtype=np.int64)).tolist() == [0, 1, 2]


# --- incremental rounds ---------------------------------------------------------------------


@pytest.mark.parametrize("max_bucket", [mh.DEFAULT_MAX_BUCKET, 3])
def test_match_against_finds_the_cross_pairs_of_a_full_run(
    corpus: list[str], max_bucket: int, tmp_path: Path
) -> None:
    # 40 copies of one text on both sides make buckets larger than max_bucket=3
    old_texts = corpus[:5000] + ["My card has not arrived yet."] * 20
    new_texts = corpus[5000:6500] + ["my card has not arrived yet"] * 20
    n_old = len(old_texts)
    bands, rows = mh.lsh_params(mh.DEFAULT_THRESHOLD, 128)
    all_sigs, all_shingles = mh.sketch(old_texts + new_texts)
    # the earlier round's signatures come back from disk; only the new records are hashed
    old_sigs, old_shingles = mh.sketch(old_texts)
    mh.save_signatures(
        tmp_path / "round1.parquet", list(map(str, range(n_old))), old_sigs, mh.DEFAULT_PARAMS
    )
    old_sigs = mh.load_signatures(tmp_path / "round1.parquet", mh.DEFAULT_PARAMS)[1]
    new_sigs, new_shingles = mh.sketch(new_texts)
    candidates = mh.candidate_pairs(all_sigs, bands, rows, max_bucket=max_bucket)
    for exact in (False, True):
        full = mh.verify(all_sigs, candidates, shingles=all_shingles if exact else None)
        cross = full[(full[:, 0] < n_old) & (full[:, 1] >= n_old)]
        expected = {(int(j) - n_old, int(i)) for i, j in cross}
        found = mh.match_against(
            new_sigs,
            old_sigs,
            bands,
            rows,
            max_bucket=max_bucket,
            new_shingles=new_shingles if exact else None,
            old_shingles=old_shingles if exact else None,
        )
        assert as_set(found) == expected
        assert len(expected) >= 300


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(2, 5), st.integers(0, 2**32 - 1))
def test_match_against_windows_giant_buckets_like_a_full_run(
    n_old: int, n_new: int, max_bucket: int, seed: int
) -> None:
    """Band 0 is shared by every record, so its bucket exceeds max_bucket and old and new
    records interleave in it; other bands collide at random."""
    rng = np.random.default_rng(seed)
    sigs = rng.integers(0, 3, size=(n_old + n_new, 16), dtype=np.uint32)
    sigs[:, :4] = 7
    full = mh.candidate_pairs(sigs, 4, 4, max_bucket=max_bucket)
    cross = full[(full[:, 0] < n_old) & (full[:, 1] >= n_old)]
    expected = {(int(j) - n_old, int(i)) for i, j in cross}
    found = mh.match_against(sigs[n_old:], sigs[:n_old], 4, 4, 0.0, max_bucket=max_bucket)
    assert as_set(found) == expected


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 12), min_size=1, max_size=4),
    st.integers(1, 12),
    st.integers(2, 5),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
)
def test_cross_candidates_over_segments_in_chunks_equal_a_full_run(
    segments: list[int], n_new: int, max_bucket: int, chunk: int, seed: int
) -> None:
    """The old records as several segments, read by the compiled pass ``chunk`` records at a
    time: the same cross pairs as ``candidate_pairs`` over old and new together."""
    rng = np.random.default_rng(seed)
    n_old = sum(segments)
    sigs = rng.integers(0, 3, size=(n_old + n_new, 16), dtype=np.uint32)
    sigs[: n_old // 2, :4] = 7  # a shared band: a bucket above max_bucket
    full = mh.candidate_pairs(sigs, 4, 4, max_bucket=max_bucket)
    cross = full[(full[:, 0] < n_old) & (full[:, 1] >= n_old)]
    expected = {(int(j) - n_old, int(i)) for i, j in cross}
    bounds = np.cumsum([0, *segments])
    olds = [sigs[a:b] for a, b in itertools.pairwise(bounds.tolist())]
    with mock.patch.object(lsh, "_HIT_CHUNK", chunk):
        found = lsh.cross_candidates(sigs[n_old:], olds, 4, 4, max_bucket=max_bucket)
    assert as_set(found) == expected


def test_match_against_needs_both_or_no_shingles() -> None:
    sigs, shingles = mh.sketch(["a b c d e f", "a b c d e g"])
    with pytest.raises(ValueError, match="pass both new_shingles and old_shingles"):
        mh.match_against(sigs, sigs, 16, 8, new_shingles=shingles)
    with pytest.raises(ValueError, match="same MinHashParams"):
        mh.match_against(sigs, sigs[:, :64], 16, 4)


# --- persistence ----------------------------------------------------------------------------


def test_signatures_round_trip_through_parquet(tmp_path: Path, corpus: list[str]) -> None:
    params = mh.MinHashParams(seed=3, num_perm=64)
    sigs = mh.signatures(corpus[:100], params)
    ids = [f"r{i}" for i in range(100)]
    path = tmp_path / "signatures.parquet"
    mh.save_signatures(path, ids, sigs, params)
    loaded_ids, loaded = mh.load_signatures(path, params)
    assert loaded_ids == ids
    assert np.array_equal(loaded, sigs)
    assert loaded.dtype == np.uint32
    assert pq.read_schema(path).field("signature").type == pa.list_(pa.uint32(), 64)
    assert [p.name for p in tmp_path.iterdir()] == ["signatures.parquet"]  # no temp file left


def test_loading_refuses_other_params(tmp_path: Path) -> None:
    stored = mh.MinHashParams(num_perm=64, k=4)
    path = tmp_path / "sigs.parquet"
    mh.save_signatures(path, ["a"], mh.signatures(["hello"], stored), stored)
    with pytest.raises(mh.SignatureParamsError) as caught:
        mh.load_signatures(path, mh.MinHashParams())
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ConfigError)
    assert f"The signatures in {path} were computed with num_perm=64, k=4" in message
    assert "this run asks for num_perm=128, k=5" in message
    assert "delete the file so that the signatures of all records are recomputed" in message


def test_loading_rejects_files_that_are_not_signature_files(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"id": ["a"], "x": [1]}), path)
    with pytest.raises(mh.SignatureFileError, match="not a signature file") as caught:
        mh.load_signatures(path, mh.DEFAULT_PARAMS)
    assert isinstance(caught.value, InputError)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(mh.SignatureFileError, match="not a readable Parquet file"):
        mh.load_signatures(garbage, mh.DEFAULT_PARAMS)


def test_a_failed_save_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = mh.DEFAULT_PARAMS
    path = tmp_path / "sigs.parquet"
    mh.save_signatures(path, ["a"], mh.signatures(["old"]), params)
    before = path.read_bytes()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        mh.save_signatures(path, ["b"], mh.signatures(["new"]), params)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sigs.parquet"]


def test_save_rejects_mismatched_input(tmp_path: Path) -> None:
    sigs = mh.signatures(["a", "b"])
    with pytest.raises(ValueError, match="one id per row"):
        mh.save_signatures(tmp_path / "x.parquet", ["a"], sigs, mh.DEFAULT_PARAMS)
    with pytest.raises(ValueError, match="num_perm=64 columns"):
        mh.save_signatures(tmp_path / "x.parquet", ["a", "b"], sigs, mh.MinHashParams(num_perm=64))


# --- params ---------------------------------------------------------------------------------


def test_params_round_trip_and_validate() -> None:
    params = mh.MinHashParams(seed=9, num_perm=32, shingle="word", k=2)
    assert mh.MinHashParams.from_dict(params.to_dict()) == params
    assert params.to_dict() == {
        "seed": 9,
        "num_perm": 32,
        "shingle": "word",
        "k": 2,
        "scheme": mh.SCHEME_VERSION,
    }
    with pytest.raises(ValueError, match="num_perm must be an integer from 1 to 8192"):
        mh.MinHashParams(num_perm=0)
    with pytest.raises(ValueError, match='shingle must be "word" or "char"'):
        mh.MinHashParams(shingle="line")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\['bands'\] are unknown"):
        mh.MinHashParams.from_dict({**params.to_dict(), "bands": 4})
    with pytest.raises(ValueError, match="seed must be an integer"):
        mh.MinHashParams(seed=True)


def test_first_use_of_the_compiled_kernels_from_several_threads_at_once() -> None:
    """The kernels module loads on first use; threads that reach it together must all see it
    whole (a lazy loader that is not thread-safe failed here with AttributeError)."""
    code = (
        "import sys\n"
        "from flywheel import minhash\n"
        "assert 'numba' not in sys.modules\n"
        "sigs = minhash.sketch(['a b c d e f g h'] * 4000, batch_size=64, workers=4)[0]\n"
        "assert sigs.shape == (4000, 128)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
