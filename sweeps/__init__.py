"""The sweep files of ``python sweep.py sweep=NAME``, installed as ``sweeplab.sweep_files`` (see sweeplab.config.locations)."""
