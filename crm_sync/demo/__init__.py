"""Synthetic business for the demo and the benchmarks (``povtor demo-data``)."""
