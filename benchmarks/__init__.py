"""Benchmarks of fedlife's site pipeline; run as scripts, not collected by pytest."""
