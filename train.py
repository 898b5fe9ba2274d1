#!/usr/bin/env python
"""Train an image classifier: `python train.py [hydra overrides]`. See README.md."""

from sweeplab.cli.train import cli

if __name__ == "__main__":
    cli()
