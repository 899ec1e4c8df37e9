"""Benchmarks: `python -m bench` (see bench/__main__.py). Timings are never asserted in tests."""
