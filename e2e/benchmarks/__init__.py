"""Benchmarks of Rung on the local cluster (reports, never timed asserts): the driver is
bench.py; one module per measurement (floor, convergence, idle, canary, flagger)."""
