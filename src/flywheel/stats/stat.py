"""Result values that say when they are undefined, and the one weighted-sum kernel.

A statistic that is 0/0 (one label used by everyone, a single annotator, nothing pairable) is a
:class:`Stat` with ``value=None`` and a sentence in ``undefined_reason``, never a silent 0, 1
or NaN.
NaN is used only inside the batched kernels and never leaves this package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Stat:
    """One statistic: a finite ``value``, or ``None`` and the reason it is undefined.

    ``observed``/``expected`` are the observed and chance-expected agreement (kappa family) or
    disagreement (Krippendorff's alpha) behind the value; ``se`` is an asymptotic standard error
    where the statistic has a standard one (Cohen's kappa).
    """

    value: float | None
    undefined_reason: str | None = None
    observed: float | None = None
    expected: float | None = None
    se: float | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.undefined_reason is None):
            raise ValueError(
                "A Stat has either a value or an undefined_reason, exactly one of them."
            )
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(
                f"A Stat value must be finite, not {self.value!r}; give a reason instead."
            )

    @classmethod
    def undefined(cls, reason: str) -> Stat:
        return cls(None, reason)

    @property
    def defined(self) -> bool:
        return self.value is not None

    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": rounded(self.value, digits),
            "undefined_reason": self.undefined_reason,
        }
        if self.observed is not None:
            out["observed"] = rounded(self.observed, digits)
        if self.expected is not None:
            out["expected"] = rounded(self.expected, digits)
        if self.se is not None:
            out["se"] = rounded(self.se, digits)
        return out


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap confidence interval from ``replicates`` item resamples.

    Replicates in which the statistic is undefined (e.g. a resample that holds one label only)
    are left out of the percentiles and counted in ``undefined_replicates``.
    """

    low: float | None
    high: float | None
    confidence: float
    replicates: int
    undefined_replicates: int
    seed: int
    undefined_reason: str | None = None

    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        return {
            "low": rounded(self.low, digits),
            "high": rounded(self.high, digits),
            "confidence": self.confidence,
            "replicates": self.replicates,
            "undefined_replicates": self.undefined_replicates,
            "seed": self.seed,
            "undefined_reason": self.undefined_reason,
        }


def rounded(x: float | None, digits: int = 6) -> float | None:
    """Round for output only; ``+ 0.0`` turns a rounded ``-0.0`` into ``0.0``."""
    return None if x is None else round(float(x), digits) + 0.0


def finite(x: float | np.floating[Any]) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None


def group_sum(weights: FloatArray, index: IntArray, size: int) -> FloatArray:
    """Sum ``weights`` along its last axis by group: shape (..., P) -> (..., size).

    ``index`` (P,) gives each column's group in 0..size-1, or -1 to leave it out. Sorting once and
    ``np.add.reduceat`` make this O(P) per batch row whatever ``size`` is, for one weight vector
    (a point estimate) or a (B, P) batch of bootstrap resamples alike.
    """
    keep = np.flatnonzero(index >= 0)
    idx = index[keep]
    order = np.argsort(idx, kind="stable")
    present, starts = np.unique(idx[order], return_index=True)
    out = np.zeros((*weights.shape[:-1], size), dtype=np.float64)
    if present.size:
        out[..., present] = np.add.reduceat(weights[..., keep[order]], starts, axis=-1)
    return out
