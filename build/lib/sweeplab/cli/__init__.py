"""Command-line entry points (the thin scripts at the repository root call these)."""
