"""``params.yaml``: loaded once, schema-checked, with a suggestion for a mistyped key."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from flywheel import schemas
from flywheel.errors import ConfigError
from flywheel.io import read_yaml

DEFAULT_PATH = Path("params.yaml")


def _known_keys(path: list[str]) -> list[str]:
    node: Any = schemas.schema("params")
    for key in path:
        node = node.get("properties", {}).get(key, {})
    return list(node.get("properties", {}))


def _unknown(path: Path, what: str, key: str, known: list[str]) -> None:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"{path}: {what}.{hint} Known: {', '.join(known)}.")


def load(path: Path = DEFAULT_PATH) -> dict[str, Any]:
    """Read and check ``params.yaml``; a typo names the key, the section and the likely fix."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping of stage sections, not {type(data).__name__}.")
    sections = _known_keys([])
    for section, body in data.items():
        if section not in sections:
            _unknown(path, f"unknown section '{section}'", section, sections)
        allowed = _known_keys([section])
        for key in body if isinstance(body, dict) else ():
            if key not in allowed:
                _unknown(path, f"section '{section}' has unknown key '{key}'", key, allowed)
    schemas.check("params", data, path, ConfigError)
    return data
