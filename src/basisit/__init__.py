"""Basis-IT for the Saarland's municipalities."""

__version__ = "0.1.0"
