from __future__ import annotations

from pathlib import Path

import pytest

from flywheel import params
from flywheel.errors import ConfigError


def write(repo: Path, old: str, new: str) -> None:
    path = repo / "params.yaml"
    path.write_text(path.read_text().replace(old, new, 1))


def test_shipped_params_load(repo: Path) -> None:
    assert params.load()["queue"]["confidence_threshold"] == 0.6


def test_typo_in_a_key_names_section_key_and_suggestion(repo: Path) -> None:
    write(repo, "confidence_threshold:", "confidence_treshold:")
    with pytest.raises(ConfigError) as err:
        params.load()
    assert str(err.value).startswith(
        "params.yaml: section 'queue' has unknown key 'confidence_treshold'. "
        "Did you mean 'confidence_threshold'?"
    )


def test_typo_in_a_section(repo: Path) -> None:
    write(repo, "dedup:", "dedupe:")
    with pytest.raises(ConfigError, match=r"unknown section 'dedupe'. Did you mean 'dedup'\?"):
        params.load()


def test_wrong_value_names_the_path(repo: Path) -> None:
    write(repo, "eval_fraction: 0.2", "eval_fraction: 2")
    with pytest.raises(
        ConfigError, match=r"at split/eval_fraction: 2 is greater than or equal to the maximum of 1"
    ):
        params.load()


def test_yaml_syntax_error_names_line(repo: Path) -> None:
    write(repo, "split:", "split: [")
    with pytest.raises(ConfigError, match=r"params.yaml is not valid YAML at line \d+"):
        params.load()
