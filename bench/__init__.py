"""Benchmarks for issue 12; see docs/performance.md for the commands and figures."""
