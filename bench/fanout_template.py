"""The synthetic fan-out template: one file and one forgeflow module per task.

``python -m bench.fanout_template DIR [--modules N]`` writes ``DIR/fanout``; the bench
generates it at run time into a temporary directory, so nothing large is committed.
Module ``m0000`` is the root every other module depends on, so after one task the
whole plan fans out under the workflow's ``max_parallel_tasks`` bound.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

TEMPLATE_ID = "fanout"


def module_slug(n: int) -> str:
    return f"m{n:04d}"


def write_fanout_template(base: Path, modules: int = 1000) -> Path:
    """Write the template into ``base/fanout``; return its directory."""
    root = base / TEMPLATE_ID
    project = root / "{{cookiecutter.project_slug}}"
    project.mkdir(parents=True, exist_ok=True)
    (root / "cookiecutter.json").write_text(
        json.dumps(
            {
                "project_name": "Fanout",
                "project_slug": "{{ cookiecutter.project_name.lower().replace(' ', '_') }}",
                # What the API may add to any create request.
                "project_description": "",
                "author_email": "",
            },
            indent=2,
        )
    )
    declared = []
    for n in range(modules):
        slug = module_slug(n)
        (project / f"{slug}.txt").write_text(f"module {n} of {{{{ cookiecutter.project_name }}}}\n")
        declared.append(
            {
                "slug": slug,
                "description": f"synthetic module {n}",
                "paths": [f"{slug}.txt"],
                "depends_on": [] if n == 0 else [module_slug(0)],
                "expected_outputs": [f"{slug}.txt"],
            }
        )
    manifest = {"forgeflow": 1, "version": "1.0.0", "title": f"Synthetic fan-out ({modules} modules)"}
    manifest["modules"] = declared
    (root / "forgeflow.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--modules", type=int, default=1000)
    args = parser.parse_args()
    print(write_fanout_template(args.directory, args.modules))


if __name__ == "__main__":
    main()
