"""`forgeflow temporal-cli`: the bundled `temporal` binary, pointed at forgeflow's server and
namespace, with the caller's own flags winning and its exit code passed through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forgeflow", "temporal-cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_address_and_namespace_come_from_settings_and_flags_win(temporal_address, namespace, tmp_path: Path):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FORGEFLOW_", "TEMPORAL_"))}
    # No dev stack recorded here: the settings alone decide.
    env = {**base, "XDG_RUNTIME_DIR": str(tmp_path), "FORGEFLOW_TEMPORAL_ADDRESS": temporal_address}

    found = run("workflow", "list", "--limit", "1", env={**env, "FORGEFLOW_NAMESPACE": namespace})
    assert found.returncode == 0, found.stderr
    # The namespace really is passed on: one that does not exist is refused by the server...
    missing = run("workflow", "list", "--limit", "1", env={**env, "FORGEFLOW_NAMESPACE": "no-such-namespace"})
    assert missing.returncode != 0 and "no-such-namespace" in missing.stderr, missing.stderr
    # ...unless the command line names another.
    flagged = run(
        "workflow",
        "list",
        "--limit",
        "1",
        "--namespace",
        namespace,
        env={**env, "FORGEFLOW_NAMESPACE": "no-such-namespace"},
    )
    assert flagged.returncode == 0, flagged.stderr
    # An explicit --address wins over the settings, and the CLI's failure is the command's.
    elsewhere = run("workflow", "list", "--address", "127.0.0.1:1", "--command-timeout", "5s", env=env)
    assert elsewhere.returncode != 0 and "127.0.0.1:1" in elsewhere.stderr, elsewhere.stderr
    # Everything after `temporal-cli` is the CLI's own, --help and --version included.
    version = run("--version", env=env)
    assert version.returncode == 0 and version.stdout.startswith("temporal version"), version.stdout
    helped = run("workflow", "list", "--help", env=env)
    assert helped.returncode == 0 and "temporal workflow list" in helped.stdout
