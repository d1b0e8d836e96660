"""The one exception tree of flywheel.

::

    FlywheelError            anything flywheel reports to a person; the CLI prints it, exits 1
    ├── InputError           a data file (export, review, table) cannot be read as asked
    ├── ConfigError          params.yaml, a manifest or the guidelines are wrong
    ├── SchemaError          a file does not validate against its JSON Schema
    └── GateError            a quality gate in params.yaml failed (agreement, leakage, ledger)

Messages are whole sentences naming the file, the row or key, the value and the fix. The library
raises these; only ``flywheel.cli`` turns them into ``click.ClickException``.
"""

from __future__ import annotations


class FlywheelError(Exception):
    """Base class: an error a person can act on."""


class InputError(FlywheelError):
    """A data file cannot be read as asked."""


class ConfigError(FlywheelError):
    """A configuration file (params, manifest, guidelines) is wrong."""


class SchemaError(FlywheelError):
    """A file does not validate against its JSON Schema."""


class GateError(FlywheelError):
    """A quality gate from params.yaml failed."""
