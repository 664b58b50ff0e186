"""Benchmarks: `make bench` runs `python -m bench`, which prints a table of figures."""
