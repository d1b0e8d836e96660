"""MinHash parameters, and the array types and small helpers the MinHash modules share.

``MinHashParams`` holds everything that makes two signatures comparable and is stored beside
persisted signatures (``flywheel.signature_store``); ``SCHEME_VERSION`` names the
normalization, shingle hashing and permutation scheme of this code. The array type aliases,
``_check_signatures`` (the ``(n, num_perm)`` uint32 contract) and the array helpers ``_batches``
and ``_expand`` are shared by ``flywheel.shingles``, ``flywheel.minhash``, ``flywheel.jaccard``,
``flywheel.lsh`` and ``flywheel.signature_store``. ``flywheel.minhash`` re-exports the public
names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["DEFAULT_PARAMS", "SCHEME_VERSION", "MinHashParams"]

#: Names everything between raw text and signature values: normalization, shingle hash, seeding
#: and permutation family. Bump it whenever any of them changes an output value.
SCHEME_VERSION = "flywheel-minhash-1"

ShingleKind: TypeAlias = Literal["word", "char"]
TextInput: TypeAlias = "Sequence[str] | pa.Array | pa.ChunkedArray"
UInt32Array: TypeAlias = npt.NDArray[np.uint32]
UInt64Array: TypeAlias = npt.NDArray[np.uint64]
Int64Array: TypeAlias = npt.NDArray[np.int64]
Float64Array: TypeAlias = npt.NDArray[np.float64]
_U64 = np.uint64


@dataclass(frozen=True)
class MinHashParams:
    """Everything that makes two signatures comparable; stored beside persisted signatures.

    Attributes:
        seed: seeds the permutations; any integer in ``[0, 2**64)``.
        num_perm: number of permutations, the signature width.
        shingle: ``"char"`` for character k-grams (robust to typos in short texts), ``"word"``
            for word k-grams.
        k: shingle length in characters or words; a text shorter than ``k`` is one shingle.
        scheme: ``SCHEME_VERSION`` of the code that computed the signatures.
    """

    seed: int = 1
    num_perm: int = 128
    shingle: ShingleKind = "char"
    k: int = 5
    scheme: str = SCHEME_VERSION

    def __post_init__(self) -> None:
        for name, low, high in (("seed", 0, 2**64 - 1), ("num_perm", 1, 8192), ("k", 1, 64)):
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise ValueError(
                    f"MinHash parameter {name} must be an integer from {low} to {high}, "
                    f"but it is {value!r}."
                )
        if self.shingle not in ("word", "char"):
            raise ValueError(
                f'MinHash parameter shingle must be "word" or "char", but it is {self.shingle!r}.'
            )
        if not isinstance(self.scheme, str) or not self.scheme:
            raise ValueError(
                f"MinHash parameter scheme must be a non-empty string, but it is {self.scheme!r}."
            )

    def to_dict(self) -> dict[str, int | str]:
        """Plain JSON-ready dict, the inverse of ``from_dict``."""
        return dict(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MinHashParams:
        """Build params from ``to_dict`` output; unknown or missing keys are errors."""
        names = {f.name for f in fields(cls)}
        unknown, missing = sorted(set(data) - names), sorted(names - set(data))
        if unknown or missing:
            raise ValueError(
                f"MinHash parameters must have exactly the keys {sorted(names)}, but "
                f"{unknown} are unknown and {missing} are missing; write them with "
                "MinHashParams.to_dict()."
            )
        return cls(**dict(data))


DEFAULT_PARAMS = MinHashParams()

_PAIR_BLOCK = 32_768
#: Threads for batch work whose compiled loops release the GIL (signing, pair kernels): one per
#: core, at most four.
THREADS = max(1, min(os.cpu_count() or 1, 4))


def _batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _expand(first: Int64Array, count: Int64Array) -> tuple[Int64Array, Int64Array]:
    """For each ``i``, the ranges ``first[i] .. first[i]+count[i]-1``, flattened: ``(source i,
    value)``, each ``(count.sum(),)``."""
    source = np.repeat(np.arange(first.size), count)
    starts = np.cumsum(count) - count
    return source, first[source] + (np.arange(source.size) - starts[source])


def _check_signatures(sigs: npt.ArrayLike, name: str = "signatures") -> UInt32Array:
    arr = np.asarray(sigs)
    if arr.ndim != 2 or arr.dtype != np.uint32:
        raise ValueError(
            f"{name} must be a uint32 array of shape (n, num_perm) as returned by signatures(), "
            f"but got dtype {arr.dtype} and shape {arr.shape}."
        )
    return arr
