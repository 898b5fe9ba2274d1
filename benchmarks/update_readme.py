#!/usr/bin/env python
"""Copy the latest benchmark tables from benchmarks/results/ into benchmarks/README.md.

benchmarks/README.md marks each table's place with a pair of comments,
``<!-- results: NAME -->`` and ``<!-- /results -->``; the text between them is
replaced by benchmarks/results/NAME.md and the date it was measured (the last commit
of that file, or today when it has changes not committed yet), so the figures in the
README are always the ones a benchmark printed, with the machine (the table's first
line) and the date.

    python benchmarks/update_readme.py
"""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "benchmarks" / "README.md"
BLOCK = re.compile(r"(<!-- results: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.DOTALL)


def measured_on(path: Path) -> str:
    """The date ``path`` was measured: its last commit's, or today's when it differs from that commit."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=path.parent, capture_output=True, text=True, check=False)

    changed = git("status", "--porcelain", "--", path.name).stdout.strip()
    committed = git("log", "-1", "--format=%cs", "--", path.name).stdout.strip()
    return committed if committed and not changed else datetime.date.today().isoformat()


def fill(readme: str, results_dir: Path, date_of: Callable[[Path], str] = measured_on) -> str:
    """``readme`` with each marked block holding ``results_dir/NAME.md`` and the date it was measured."""

    def table(match: re.Match) -> str:
        source = results_dir / f"{match['name']}.md"
        if not source.is_file():
            sys.exit(f"error: benchmarks/README.md asks for {source}, which does not exist (run its benchmark first)")
        return (
            match.group(1) + "\n" + source.read_text().strip() + f"\n\nmeasured: {date_of(source)}\n\n" + match.group(4)
        )

    return BLOCK.sub(table, readme)


def main() -> None:
    text = README.read_text()
    README.write_text(fill(text, REPO / "benchmarks" / "results"))
    print(f"benchmarks/README.md: {len(BLOCK.findall(text))} result tables copied from benchmarks/results/")


if __name__ == "__main__":
    main()
