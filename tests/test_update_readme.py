"""benchmarks/update_readme.py copies result tables, dated, between the markers of benchmarks/README.md."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "update_readme.py"


def _load():
    spec = importlib.util.spec_from_file_location("update_readme", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tables_replace_what_stood_between_the_markers_with_their_date(tmp_path):
    (tmp_path / "speed.md").write_text("machine: x\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    readme = "intro\n<!-- results: speed -->\nold table\n<!-- /results -->\nafter\n"
    filled = _load().fill(readme, tmp_path, date_of=lambda path: "2026-01-02")
    assert filled == (
        "intro\n<!-- results: speed -->\n\nmachine: x\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "measured: 2026-01-02\n\n<!-- /results -->\nafter\n"
    )
    assert _load().fill(filled, tmp_path, date_of=lambda path: "2026-01-02") == filled  # again: no change


def test_a_missing_results_file_is_named(tmp_path):
    with pytest.raises(SystemExit, match="nothing.md"):
        _load().fill("<!-- results: nothing -->\n<!-- /results -->\n", tmp_path)


def test_the_benchmarks_readme_is_up_to_date_and_every_table_names_its_machine_and_date():
    module = _load()
    text = module.README.read_text()
    names = [match["name"] for match in module.BLOCK.finditer(text)]
    assert {
        "throughput",
        "time_to_accuracy",
        "anchors",
        "memory_layout",
        "run_record",
        "sweep_efficiency",
        "zoo",
    } <= set(names)
    assert module.fill(text, REPO / "benchmarks" / "results") == text, "run python benchmarks/update_readme.py"
    for match in module.BLOCK.finditer(text):
        assert re.search(r"(machine:|Measured on) ", match["body"]), match["name"]
        assert re.search(r"measured: \d{4}-\d{2}-\d{2}", match["body"]), match["name"]


def test_the_top_readme_holds_no_benchmark_tables():
    assert "<!-- results:" not in (REPO / "README.md").read_text()
