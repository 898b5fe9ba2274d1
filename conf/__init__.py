"""sweeplab's Hydra configs, installed with the package as ``sweeplab.conf`` (see sweeplab.config.locations)."""
