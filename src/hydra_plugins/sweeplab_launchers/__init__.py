"""sweeplab's Hydra launchers (``conf/hydra/launcher/``): Hydra instantiates plugins from the
``hydra_plugins`` namespace only, so they live here and not in the ``sweeplab`` package."""
