#!/usr/bin/env python
"""Compare runs: `python compare.py PATH... [--metric test_acc] [--format md|csv|json]`. See README.md."""

from sweeplab.cli.compare import cli

if __name__ == "__main__":
    cli()
