"""forgeflow's fake coding agent, for tests, benchmarks and a first look at agent mode
offline, run as the ``command`` agent (FORGEFLOW_AGENT_COMMAND="python agents/fake_coder.py
[--sleep S] {prompt_file} {workdir}"): it reads forgeflow's prompt file, finds its task's
slug and globs in it, and writes ``<first scope dir>/<slug>.py`` and a line of that dir's
``NOTES.md`` in the work tree, as a real agent would; its last line of output is the JSON
forgeflow reads usage from (1,000 input and 200 output tokens, $0.01). It is no model and
writes no real code. ``--sleep S``: work S seconds first (an agent's time, for benchmarks).
Behaviours a test asks for by the task's slug: ``*-outside`` also writes outside its scope;
``*-link`` makes a symbolic link out of the work tree; ``*-flaky`` fails while the file
``--fail-if`` names exists. A fix task (its prompt has a check's output or a reviewer's
feedback) also copies that text, as it reads it, to ``<first scope dir>/FIXES.md``."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path


def task_target(prompt: str) -> tuple[str, str]:
    """The task's slug and the folder its first path glob names, read from forgeflow's task
    prompt (agents/task_prompt.py), as a real agent would find them."""
    slug = re.search(r"^# Task \d+ of \d+: (\S+)$", prompt, re.M).group(1)  # type: ignore[union-attr]
    scope = prompt.split("## The files you may change")[-1].split("## The files that must exist")[0]
    globs = re.findall(r"^- `([^`]+)`$", scope, re.M)
    return slug, globs[0].split("*")[0].rstrip("/") or "."


def main() -> int:
    parser = argparse.ArgumentParser(description="forgeflow's fake coding agent (no model)")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail-if", type=Path, help="fail a *-flaky task while this file exists")
    parser.add_argument("prompt_file", type=Path)
    parser.add_argument("workdir", type=Path)
    args = parser.parse_args()
    prompt_file, workdir = args.prompt_file, args.workdir
    time.sleep(args.sleep)
    prompt = prompt_file.read_text()
    slug, folder = task_target(prompt)
    if slug.endswith("-flaky") and args.fail_if is not None and args.fail_if.exists():
        print(f"{slug}: failing, as {args.fail_if} says", file=sys.stderr)
        return 3
    target = workdir / folder
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{slug.replace('-', '_')}.py").write_text(
        f'"""Built by the fake coder for {slug}."""\n\nTASK = {slug!r}\n'
    )
    with (target / "NOTES.md").open("a") as notes:
        notes.write(f"- {slug}: done\n")
    fence = r"^=== (check output|reviewer feedback) (\w+) ===\n(.*?)\n=== end of \1 \2 ===$"
    asked = re.findall(fence, prompt, re.M | re.S)
    if asked:
        with (target / "FIXES.md").open("a") as fixes:
            fixes.writelines(f"## {slug}: {kind}\n{text}\n" for kind, _tag, text in asked)
    if slug.endswith("-outside"):
        (workdir / "elsewhere.txt").write_text("not mine to write\n")
    if slug.endswith("-link"):
        (target / "passwd").symlink_to("/etc/passwd")
    print(f"working on {slug} in {folder}")
    print(
        json.dumps(
            {
                "usage": {"input_tokens": 1000, "output_tokens": 200},
                "cost_usd": 0.01,
                "summary": f"built {slug}",
                "risks": [f"{slug}: untested (a fake agent wrote it)"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
