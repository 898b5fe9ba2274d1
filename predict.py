#!/usr/bin/env python
"""A trained run's predictions for your images: `python predict.py RUN_DIR IMAGE...`. See README.md."""

from sweeplab.cli.predict import cli

if __name__ == "__main__":
    cli()
