#!/usr/bin/env python
"""Copy the latest benchmark tables from benchmarks/results/ into README.md.

README.md marks each table's place with a pair of comments,
``<!-- results: NAME -->`` and ``<!-- /results -->``; the text between them is
replaced by benchmarks/results/NAME.md, so the figures in the README are always the
ones a benchmark printed.

    python benchmarks/update_readme.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- results: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.DOTALL)


def fill(readme: str, results_dir: Path) -> str:
    def table(match: re.Match) -> str:
        source = results_dir / f"{match['name']}.md"
        if not source.is_file():
            sys.exit(f"error: README.md asks for {source}, which does not exist (run its benchmark first)")
        return match.group(1) + "\n" + source.read_text().strip() + "\n\n" + match.group(4)

    return BLOCK.sub(table, readme)


def main() -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    updated = fill(text, REPO / "benchmarks" / "results")
    readme.write_text(updated)
    print(f"README.md: {len(BLOCK.findall(text))} result tables copied from benchmarks/results/")


if __name__ == "__main__":
    main()
