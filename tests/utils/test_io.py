"""ovdet.utils.io: every file write of ovdet is atomic."""

from __future__ import annotations

import hashlib
import json

import pytest

from ovdet.utils.io import atomic_write, atomic_write_bytes, file_sha256, write_json


def test_write_json_keeps_old_file_on_error(tmp_path):
    path = write_json(tmp_path / "x.json", {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary file left


def test_write_json_formats(tmp_path):
    obj = {"b": [1, 2], "a": "é"}
    assert write_json(tmp_path / "one.json", obj).read_text() == '{"b": [1, 2], "a": "\\u00e9"}\n'
    compact = write_json(tmp_path / "c.json", obj, compact=True, newline=False).read_text()
    assert compact == '{"b":[1,2],"a":"é"}'
    pretty = write_json(tmp_path / "p.json", obj, indent=2, sort_keys=True).read_text()
    assert pretty.startswith('{\n  "a"') and pretty.endswith("}\n")
    nested = write_json(tmp_path / "new" / "dir" / "d.json", [], durable=True)
    assert nested.read_text() == "[]\n"


def test_atomic_write_callback_failure_leaves_nothing(tmp_path):
    def broken(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "w.bin", broken)
    assert list(tmp_path.iterdir()) == []
    atomic_write_bytes(tmp_path / "w.bin", b"whole")
    assert (tmp_path / "w.bin").read_bytes() == b"whole"


def test_file_sha256(tmp_path):
    data = bytes(range(256)) * 5000
    path = atomic_write_bytes(tmp_path / "f", data)
    assert file_sha256(path, chunk=1000) == hashlib.sha256(data).hexdigest()


def test_files_get_the_mode_of_a_plain_open(tmp_path):
    import os
    import stat

    plain = tmp_path / "plain"
    plain.write_text("x")
    atomic = atomic_write_bytes(tmp_path / "atomic", b"x")
    assert stat.S_IMODE(os.stat(atomic).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)
