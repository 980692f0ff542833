"""What an update changes: the files of a commit read back from a bundle's objects
(:func:`engine.gitpack.read_bundle`), and the difference between two sets of files as a
patch ``git apply`` takes (:func:`unified_diff`) or as per-file counts (:func:`diff_stats`)."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterator, Mapping
from typing import TypedDict

from engine import EngineError
from engine.gitpack import commit_links, tree_entries
from engine.tree import FileData, Tree

_MODES = {b"100644": 0o644, b"100755": 0o755}
_REFUSED = {b"120000": "a symlink", b"160000": "a submodule"}
FIRST_FEW_BYTES = 8000  # how far git looks for a NUL to call a file binary


def tree_of_commit(*, objects: Mapping[bytes, tuple[bytes, bytes]], commit: bytes) -> Tree:
    """Every file of ``commit``'s tree, by path. Our histories hold plain files only, so a
    symlink or a submodule (or anything else) is refused rather than turned into a file."""

    def get(oid: bytes, kind: bytes) -> bytes:
        found = objects.get(oid)
        if found is None or found[0] != kind:
            raise EngineError(f"the history has no {kind.decode()} {oid.hex()}")
        return found[1]

    files: dict[str, FileData] = {}
    # A stack, not recursion: a hostile history could nest deeper than Python's stack.
    todo = [("", commit_links(get(commit, b"commit"))[0])]
    while todo:
        prefix, tree = todo.pop()
        for mode, name, oid in tree_entries(get(tree, b"tree")):
            if mode == b"40000":
                todo.append((f"{prefix}{name}/", oid))
            elif mode in _MODES:
                files[f"{prefix}{name}"] = FileData(get(oid, b"blob"), _MODES[mode])
            else:
                kind = _REFUSED.get(mode) or f"of mode {mode.decode(errors='replace')!r}"
                raise EngineError(f"{prefix}{name} is {kind}, which a generated project never holds")
    return dict(sorted(files.items()))


# --- the difference --------------------------------------------------------------------


class FileStat(TypedDict):
    path: str
    status: str  # added | modified | deleted | mode_changed (same content, other mode)
    additions: int
    deletions: int
    binary: bool


def _changed(old: Tree, new: Tree) -> Iterator[tuple[str, FileData | None, FileData | None]]:
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before is None or after is None or before.data != after.data or before.executable != after.executable:
            yield path, before, after


def _text(file: FileData | None) -> str | None:
    """The file as text, or None if git would call it binary (a NUL early on), or it is
    not UTF-8 (a patch is text, and we write it as UTF-8)."""
    if file is None:
        return ""
    if b"\0" in file.data[:FIRST_FEW_BYTES]:
        return None
    try:
        return file.data.decode()
    except UnicodeDecodeError:
        return None


def _lines(text: str) -> list[str]:
    # Lines end at "\n" only, as git's do: str.splitlines would also split at "\r", "\f"...
    parts = text.split("\n")
    return [line + "\n" for line in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _mode(file: FileData) -> str:
    return "100755" if file.executable else "100644"


def _quoted(name: str) -> str:
    """A path as git writes it in a patch: C-quoted, bytes above 0x7f as octal, when it holds
    anything but printable ASCII (git's core.quotePath, on by default)."""
    raw = name.encode()
    if all(0x20 <= c < 0x7F and c not in b'"\\' for c in raw):
        return name
    escapes = {0x07: "\\a", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f", 0x0D: "\\r"}
    escapes |= {ord('"'): '\\"', ord("\\"): "\\\\"}
    out = "".join(escapes.get(c) or (chr(c) if 0x20 <= c < 0x7F else f"\\{c:03o}") for c in raw)
    return f'"{out}"'


def _abbrev(file: FileData | None) -> str:
    if file is None:
        return "0000000"
    return hashlib.sha1(b"blob %d\0" % len(file.data) + file.data, usedforsecurity=False).hexdigest()[:7]


def _range(start: int, length: int) -> str:
    # As GNU diff and git write it: "3" for one line, "2,0" for none after line 2.
    if length == 1:
        return str(start + 1)
    return f"{start if length == 0 else start + 1},{length}"


def _hunks(a: list[str], b: list[str], context: int) -> list[str]:
    out: list[str] = []
    for group in difflib.SequenceMatcher(None, a, b).get_grouped_opcodes(context):
        (_, i1, _, j1, _), (_, _, i2, _, j2) = group[0], group[-1]
        out.append(f"@@ -{_range(i1, i2 - i1)} +{_range(j1, j2 - j1)} @@\n")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out += [" " + line for line in a[a1:a2]]
                continue
            out += ["-" + line for line in a[a1:a2]] + ["+" + line for line in b[b1:b2]]
    # Only a file's last line can lack its newline; git marks it, or it would gain one.
    return [line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out]


def _file_patch(path: str, before: FileData | None, after: FileData | None, context: int) -> str:
    a_name, b_name = _quoted(f"a/{path}"), _quoted(f"b/{path}")
    head = [f"diff --git {a_name} {b_name}\n"]
    index_mode = ""
    if before is not None and after is not None:
        if _mode(before) == _mode(after):
            index_mode = f" {_mode(after)}"  # on the index line when no other line names it
        else:
            head += [f"old mode {_mode(before)}\n", f"new mode {_mode(after)}\n"]
            if before.data == after.data:
                return "".join(head)
    elif after is not None:
        head.append(f"new file mode {_mode(after)}\n")
    elif before is not None:
        head.append(f"deleted file mode {_mode(before)}\n")
    head.append(f"index {_abbrev(before)}..{_abbrev(after)}{index_mode}\n")
    a_label = "/dev/null" if before is None else a_name
    b_label = "/dev/null" if after is None else b_name
    old_text, new_text = _text(before), _text(after)
    if old_text is None or new_text is None:
        return "".join(head) + f"Binary files {a_label} and {b_label} differ\n"
    hunks = _hunks(_lines(old_text), _lines(new_text), context)
    if not hunks:  # an empty file added or deleted: the header says it all
        return "".join(head)
    # git puts a tab after a name with a space, so that GNU patch finds where it ends.
    a_label += "\t" if before is not None and " " in a_name else ""
    b_label += "\t" if after is not None and " " in b_name else ""
    return "".join([*head, f"--- {a_label}\n", f"+++ {b_label}\n", *hunks])


def unified_diff(*, old: Tree, new: Tree, context: int = 3) -> str:
    """A git-style patch from ``old`` to ``new``, files in path order, which ``git apply``
    takes (binary files aside: those are named, as git does without --binary, not
    carried)."""
    return "".join(_file_patch(path, before, after, context) for path, before, after in _changed(old, new))


def diff_stats(*, old: Tree, new: Tree) -> list[FileStat]:
    """Per changed file, in path order: what happened to it and how many lines it gained
    and lost (none counted for a binary file)."""
    stats: list[FileStat] = []
    for path, before, after in _changed(old, new):
        if before is None:
            status = "added"
        elif after is None:
            status = "deleted"
        else:
            status = "mode_changed" if before.data == after.data else "modified"
        old_text, new_text = _text(before), _text(after)
        binary = old_text is None or new_text is None
        additions = deletions = 0
        if old_text is not None and new_text is not None:
            matcher = difflib.SequenceMatcher(None, _lines(old_text), _lines(new_text))
            for tag, a1, a2, b1, b2 in matcher.get_opcodes():
                if tag != "equal":
                    deletions, additions = deletions + a2 - a1, additions + b2 - b1
        stats.append(FileStat(path=path, status=status, additions=additions, deletions=deletions, binary=binary))
    return stats
