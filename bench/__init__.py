"""Benchmarks, run by hand (`python -m bench.<name>`), never part of the tests.

Each prints its figures beside baselines measured in the same run and ends with one JSON line.
"""
