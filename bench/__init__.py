"""Benchmarks: `make bench` prints JSON and a short table; never asserted in tests."""
