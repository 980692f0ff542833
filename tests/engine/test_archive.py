"""The ZIP is reproducible and safe."""

from __future__ import annotations

import io
import os
import time
import zipfile

from engine.archive import build_zip, zip_bytes
from engine.tree import FileData, read_tree


def make_tree(root):
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "b.py").write_text("print('b')\n")
    (root / "a.txt").write_text("a\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "run.sh", 0o700)
    os.chmod(root / "a.txt", 0o600)


def test_same_files_give_the_same_bytes(tmp_path):
    make_tree(tmp_path / "one")
    time.sleep(1.1)  # different mtimes must not matter
    make_tree(tmp_path / "two")
    first = build_zip(tmp_path / "one", tmp_path / "one.zip", root_name="proj")
    second = build_zip(tmp_path / "two", tmp_path / "two.zip", root_name="proj")
    assert first.sha256 == second.sha256
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_entries_are_sorted_normalised_and_relative(tmp_path):
    make_tree(tmp_path / "src")
    result = build_zip(tmp_path / "src", tmp_path / "out.zip", root_name="proj")
    with zipfile.ZipFile(result.path) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["proj/a.txt", "proj/pkg/b.py", "proj/run.sh"]
    modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes == {"proj/a.txt": 0o644, "proj/pkg/b.py": 0o644, "proj/run.sh": 0o755}
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert result.files == 3


def test_symlinks_are_refused(tmp_path):
    import pytest

    from engine import PathScopeViolation

    make_tree(tmp_path / "src")
    (tmp_path / "src" / "link").symlink_to("/etc/passwd")
    with pytest.raises(PathScopeViolation):
        build_zip(tmp_path / "src", tmp_path / "out.zip", root_name="proj")


def test_a_zip_built_in_memory_has_the_bytes_of_the_directory_zip(tmp_path):
    make_tree(tmp_path / "src")
    (tmp_path / "src" / "empty").write_bytes(b"")
    (tmp_path / "src" / "pkg" / "a-b").write_bytes(bytes(range(256)) * 40)  # binary, compressible
    from_dir = build_zip(tmp_path / "src", tmp_path / "out.zip", root_name="task")
    assert zip_bytes(read_tree(tmp_path / "src"), root_name="task") == from_dir.path.read_bytes()


def test_a_stored_zip_holds_the_same_entries_uncompressed_and_is_deterministic(tmp_path):
    make_tree(tmp_path / "src")
    (tmp_path / "src" / "pkg" / "a-b").write_bytes(bytes(range(256)) * 40)
    files = read_tree(tmp_path / "src")
    stored = zip_bytes(files, root_name="task", compress=False)
    deflated = zip_bytes(files, root_name="task")
    assert stored == zip_bytes(read_tree(tmp_path / "src"), root_name="task", compress=False)
    assert len(stored) > len(deflated)
    with zipfile.ZipFile(io.BytesIO(stored)) as s, zipfile.ZipFile(io.BytesIO(deflated)) as d:
        assert {i.compress_type for i in s.infolist()} == {zipfile.ZIP_STORED}
        assert {i.compress_type for i in d.infolist()} == {zipfile.ZIP_DEFLATED}
        assert [(i.filename, i.external_attr, i.date_time) for i in s.infolist()] == [
            (i.filename, i.external_attr, i.date_time) for i in d.infolist()
        ]
        assert all(s.read(i) == d.read(i.filename) for i in s.infolist())


def test_an_empty_file_set_gives_the_empty_zip():
    # The end-of-central-directory record alone: what tasks that render nothing stored.
    empty = zip_bytes({}, root_name="task")
    assert empty == b"PK\x05\x06" + b"\0" * 18
    with zipfile.ZipFile(io.BytesIO(empty)) as zf:
        assert zf.infolist() == []


def test_the_caps_apply_to_zips_built_in_memory(monkeypatch):
    import pytest

    from engine import EngineError, archive

    monkeypatch.setattr(archive, "MAX_FILES", 1)
    with pytest.raises(EngineError, match="the cap is 1"):
        zip_bytes({"a": FileData(b"a"), "b": FileData(b"b")}, root_name="proj")
    with pytest.raises(EngineError, match="project directory name"):
        zip_bytes({}, root_name="a/b")
