"""JSON Schemas shipped with flywheel (draft 2020-12), and validation with readable errors."""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from flywheel.errors import FlywheelError, SchemaError

NAMES = ("manifest", "record", "review", "guidelines", "round", "params", "queue")


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """The compiled validator for ``schema/<name>.schema.json``. The shipped schemas are checked
    against the metaschema by the tests, not here: that cost every stage 0.04 s a schema."""
    text = resources.files("flywheel").joinpath("schema", f"{name}.schema.json").read_text("utf-8")
    schema = json.loads(text)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def describe(error: ValidationError) -> str:
    """One sentence: where in the document, and what is wrong."""
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"at {where}: {error.message}"


def errors(name: str, instance: Any) -> list[str]:
    """Every violation of schema ``name`` by ``instance``, in document order."""
    found = sorted(validator(name).iter_errors(instance), key=lambda e: list(map(str, e.path)))
    return [describe(e) for e in found]


def check(
    name: str, instance: Any, path: Path | str, error: type[FlywheelError] = SchemaError
) -> None:
    """Raise SchemaError naming ``path`` when ``instance`` does not validate."""
    problems = errors(name, instance)
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise error(
            f"{path} does not match schema/{name}.schema.json {shown}{more}. "
            f"Fix the file so that it matches the schema."
        )
