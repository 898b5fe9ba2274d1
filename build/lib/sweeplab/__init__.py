"""sweeplab: train, sweep, cross-validate and compare image classifiers."""

__version__ = "0.1.0"
