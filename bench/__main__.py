"""``python -m bench [--quick] [--db sqlite|postgresql] [--only reads|agent|coding] [--strict]``: see
bench/__init__.py and BENCHMARKS.md."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.snapshot import revision, take_snapshot


def _terminate(signum: int, _frame: object) -> None:
    # Turn SIGTERM into an exception, so every finally (and Stack.stop_all) runs.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke test: small counts, well under a minute")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--output", type=Path, default=report.RESULTS_DIR / "latest.json")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, databases)")
    parser.add_argument(
        "--only",
        choices=("reads", "agent", "coding"),
        help="only this figure (reads: the uncached reads; agent: agent mode's overhead; coding: coding agents')",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed (default: report it)")
    parser.add_argument("--e2e-runs", type=int)
    parser.add_argument("--throughput-projects", type=int)
    parser.add_argument("--fanout-tasks", type=int)
    parser.add_argument("--api-seconds", type=float)
    parser.add_argument("--reads-projects", type=int)
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _terminate)
    load_at_start = os.getloadavg()
    started = time.perf_counter()
    run_dir = Path(tempfile.mkdtemp(prefix="forgeflow-bench-"))
    source_revision = revision()
    stack = None
    failed = True
    try:
        # Everything from here on imports forgeflow from a snapshot of the tree.
        source = take_snapshot(run_dir / "src")
        sys.path.insert(0, str(source))
        from bench.agent import run_agent
        from bench.coding import run_coding
        from bench.runner import Config, log, run, run_reads
        from bench.stack import Stack

        config = Config.for_mode(args.quick, args.db)
        for name in ("e2e_runs", "throughput_projects", "fanout_tasks", "api_seconds", "reads_projects"):
            if getattr(args, name) is not None:
                setattr(config, name, getattr(args, name))
        stack = Stack(run_dir=run_dir, db_kind=args.db, src_dir=source)
        figure = {"reads": run_reads, "agent": run_agent, "coding": run_coding}.get(args.only or "", run)
        raw = asyncio.run(figure(stack, config))
        failed = False
    finally:
        if stack is not None:
            stack.stop_all()
        if failed or args.keep:
            print(f"[bench] run directory kept: {run_dir} (logs in {run_dir / 'logs'})", flush=True)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)

    raw["machine"] = report.machine()
    raw["machine"]["database"] = args.db
    raw["machine"]["load_average_at_start"] = load_at_start
    raw["machine"]["load_average_at_end"] = os.getloadavg()
    raw["revision"] = source_revision
    raw["runtime_s"] = round(time.perf_counter() - started, 1)
    summary = report.summarize(raw)
    print()
    print(report.table(summary, raw))
    print()
    for target, met in summary["targets"].items():
        print(f"  {'met   ' if met else 'MISSED'}  {target}")
    report.write(summary, raw, args.output)
    if not args.quick and args.only is None:
        report.write(summary, raw, report.RESULTS_DIR / f"full-{args.db}.json")
    log(f"wrote {args.output} in {raw['runtime_s']} s")
    missed = [target for target, met in summary["targets"].items() if not met]
    if args.strict and missed:
        log(f"--strict: {len(missed)} target(s) missed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
