"""Checking composed configs before any work starts."""
