"""Inter-annotator agreement statistics: pure numpy, vectorized, no CLI and no exits.

Build a :class:`Ratings` (``from_long``, ``from_wide`` or ``from_codes``), then call
:func:`summarize` for everything at once or any single statistic. A statistic that does not
exist for the data (one label used by everyone, a single annotator, nothing pairable) is a
:class:`Stat` with ``value=None`` and an ``undefined_reason`` sentence.

Modules: ``ratings`` (input model), ``kappa`` (agreement, Cohen, Scott, Fleiss, Gwet),
``alpha`` (Krippendorff), ``breakdown`` (per label, per annotator), ``disagreement`` (confusion,
confused label pairs), ``bootstrap`` (intervals), ``report`` (``summarize``).
"""

from __future__ import annotations

from flywheel.stats.alpha import LEVELS, krippendorff_alpha, left_out_items
from flywheel.stats.bootstrap import intervals as bootstrap_intervals
from flywheel.stats.breakdown import (
    AnnotatorAgreement,
    LabelAgreement,
    per_annotator,
    per_label,
    prevalence,
)
from flywheel.stats.disagreement import ConfusedPair, Confusion, confused_pairs, confusion
from flywheel.stats.kappa import (
    WEIGHTS,
    PairAgreement,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    mean_pairwise_kappa,
    pairwise,
    percent_agreement,
    scott_pi,
)
from flywheel.stats.ratings import MISSING, Ratings, default_label_order
from flywheel.stats.report import AgreementReport, summarize
from flywheel.stats.stat import Interval, Stat

__all__ = [
    "LEVELS",
    "MISSING",
    "WEIGHTS",
    "AgreementReport",
    "AnnotatorAgreement",
    "ConfusedPair",
    "Confusion",
    "Interval",
    "LabelAgreement",
    "PairAgreement",
    "Ratings",
    "Stat",
    "bootstrap_intervals",
    "cohen_kappa",
    "confused_pairs",
    "confusion",
    "default_label_order",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "left_out_items",
    "mean_pairwise_kappa",
    "pairwise",
    "per_annotator",
    "per_label",
    "percent_agreement",
    "prevalence",
    "scott_pi",
    "summarize",
]
