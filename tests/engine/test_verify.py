"""verify_files: what parses is remembered by content, failures are always checked again."""

from __future__ import annotations

from engine.tree import FileData
from engine.verify import verify_files


def test_verify_remembers_only_what_parsed() -> None:
    good = {"a.py": FileData(b"x = 1\n", 0o644), "b.json": FileData(b"{}", 0o644)}
    bad = {"c.py": FileData(b"def (:\n", 0o644)}
    for _ in range(2):  # the second time from memory: the same answer
        result = verify_files(good, ["a.py"])
        assert result.ok and result.files_checked == 2
        failed = verify_files(bad, [])
        assert not failed.ok and failed.errors[0].startswith("c.py: SyntaxError")
    renamed = verify_files({"d.py": FileData(b"def (:\n", 0o644)}, [])
    assert renamed.errors[0].startswith("d.py: SyntaxError"), "a failure is named with its own path"
