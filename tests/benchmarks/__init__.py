"""Benchmarks for the targets of docs/benchmarks.md (run by `make bench`).

These are programs, not pytest tests: `scripts/bench.sh` starts the servers
and runs `python -m tests.benchmarks`. No module here is named `test_*`, so
pytest never collects them.
"""
