"""benchmarks/update_readme.py copies result tables between README markers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "update_readme.py"


def _load():
    spec = importlib.util.spec_from_file_location("update_readme", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tables_replace_what_stood_between_the_markers(tmp_path):
    (tmp_path / "speed.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    readme = "intro\n<!-- results: speed -->\nold table\n<!-- /results -->\nafter\n"
    filled = _load().fill(readme, tmp_path)
    assert filled == "intro\n<!-- results: speed -->\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<!-- /results -->\nafter\n"
    assert _load().fill(filled, tmp_path) == filled  # running it again changes nothing


def test_a_missing_results_file_is_named(tmp_path):
    with pytest.raises(SystemExit, match="nothing.md"):
        _load().fill("<!-- results: nothing -->\n<!-- /results -->\n", tmp_path)
