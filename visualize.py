#!/usr/bin/env python
"""Kernels and feature maps of a trained run: `python visualize.py RUN_DIR`. See README.md."""

from sweeplab.cli.visualize import cli

if __name__ == "__main__":
    cli()
