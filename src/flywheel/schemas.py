"""JSON Schemas shipped with flywheel (draft 2020-12), and validation with readable errors.

Every stage checks ``params.yaml`` and the guidelines, and ingest every export's manifest.
Importing jsonschema and validating cost each stage's process about 0.09 s (``python -X
importtime``), six times a round, for documents that rarely change. So a document found valid
is remembered by a digest of what decides the verdict: the schema's text, the document as
parsed (its ``repr``: YAML's safe loader yields only built-in types, whose ``repr`` tells them
apart) and the installed jsonschema (its files' sizes and modification times). The next check
of the same digest passes without importing jsonschema. Only valid verdicts are kept: an invalid
document is validated every time, so its errors are always shown. The record lives in
``.flywheel/valid-documents.json``, local to the working copy and safe to delete.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flywheel.errors import FlywheelError, SchemaError
from flywheel.io import LOCAL, atomic_open

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

NAMES = ("manifest", "record", "review", "guidelines", "round", "params", "queue")
VERDICTS = LOCAL / "valid-documents.json"
KEEP = 256  # valid digests remembered, the most recent


@functools.cache
def text(name: str) -> str:
    """The text of ``schema/<name>.schema.json``."""
    return resources.files("flywheel").joinpath("schema", f"{name}.schema.json").read_text("utf-8")


@functools.cache
def schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(text(name))
    return found


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """The compiled validator for ``schema/<name>.schema.json``. The shipped schemas are checked
    against the metaschema by the tests, not here: that cost every stage 0.04 s a schema."""
    from jsonschema import Draft202012Validator, FormatChecker

    return Draft202012Validator(schema(name), format_checker=FormatChecker())


@functools.cache
def _library() -> str:
    """The installed jsonschema, by its files' names, sizes and modification times (its
    version would need ``importlib.metadata``, 0.07 s)."""
    spec = importlib.util.find_spec("jsonschema")
    if spec is None or spec.origin is None:
        return "missing"
    folder = Path(spec.origin).parent
    return json.dumps(
        [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.py"))]
    )


def _digest(name: str, instance: Any) -> str:
    h = hashlib.sha256()
    for part in (name, text(name), _library(), repr(instance)):
        h.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


def _known_valid(cache: Path) -> list[str]:
    try:
        found = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [d for d in found if isinstance(d, str)] if isinstance(found, list) else []


def _remember(cache: Path, known: list[str], digest: str) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(cache) as f:
            f.write(json.dumps([*known, digest][-KEEP:]))
    except OSError:  # a read-only working copy: validate every time
        pass


def describe(error: ValidationError) -> str:
    """One sentence: where in the document, and what is wrong."""
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"at {where}: {error.message}"


def errors(name: str, instance: Any) -> list[str]:
    """Every violation of schema ``name`` by ``instance``, in document order."""
    found = sorted(validator(name).iter_errors(instance), key=lambda e: list(map(str, e.path)))
    return [describe(e) for e in found]


def check(
    name: str,
    instance: Any,
    path: Path | str,
    error: type[FlywheelError] = SchemaError,
    cache: Path = VERDICTS,
) -> None:
    """Raise SchemaError naming ``path`` when ``instance`` does not validate (a digest found
    valid before, in ``cache``, is not validated again)."""
    digest = _digest(name, instance)
    known = _known_valid(cache)
    if digest in known:
        return
    problems = errors(name, instance)
    if not problems:
        _remember(cache, known, digest)
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise error(
            f"{path} does not match schema/{name}.schema.json {shown}{more}. "
            f"Fix the file so that it matches the schema."
        )
