#!/usr/bin/env python
"""Run an Optuna study: `python sweep.py sweep=NAME [sweep.KEY=VALUE] [training overrides]`. See README.md."""

from sweeplab.cli.sweep import cli

if __name__ == "__main__":
    cli()
