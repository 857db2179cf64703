"""Povtor: self-hosted repeat-sales automation."""

__version__ = "0.1.0"
