"""forgeflow's benchmarks against the real stack, each figure beside a baseline measured
in the same run: ``python -m bench`` (full) or ``python -m bench --quick`` (smoke test,
never asserts timings). Results: the printed table and ``bench/results/latest.json``.
See BENCHMARKS.md."""
