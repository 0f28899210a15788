from __future__ import annotations

from pathlib import Path

import pytest

from ovdet.data.builtin_meta import (
    COCO_CLASS_NAMES,
    OV_COCO_BASE_NAMES,
    OV_COCO_NAMES,
    OV_COCO_NOVEL_NAMES,
)
from ovdet.text import lvis_synonym_lists, resolve_vocabulary


def test_builtin_vocabularies():
    assert resolve_vocabulary("coco") == list(COCO_CLASS_NAMES)
    assert resolve_vocabulary("ov-coco") == list(OV_COCO_NAMES)
    assert resolve_vocabulary("ov-coco-base") == list(OV_COCO_BASE_NAMES)
    assert resolve_vocabulary("OV-COCO-novel") == list(OV_COCO_NOVEL_NAMES)
    assert len(resolve_vocabulary("ov-coco-base")) == 48
    assert len(resolve_vocabulary("ov-coco-novel")) == 17
    lvis = resolve_vocabulary("lvis")
    assert len(lvis) == len(set(lvis)) == 1203
    assert lvis[0] == "aerosol can"
    assert all("_" not in name for name in lvis)
    rare, base = resolve_vocabulary("lvis-rare"), resolve_vocabulary("lvis-base")
    assert (len(rare), len(base)) == (337, 866)
    assert set(rare) | set(base) == set(lvis)


def test_comma_list_and_single_name():
    assert resolve_vocabulary(" cat , dog ,traffic light") == ["cat", "dog", "traffic light"]
    assert resolve_vocabulary("zebra crossing") == ["zebra crossing"]
    assert resolve_vocabulary(["  cat", "dog "]) == ["cat", "dog"]


def test_names_file(tmp_path: Path):
    path = tmp_path / "names.txt"
    path.write_text("# my classes\n cat \n\ndog\n  # indented comment\nhot dog\n")
    assert resolve_vocabulary(str(path)) == ["cat", "dog", "hot dog"]
    assert resolve_vocabulary(path) == ["cat", "dog", "hot dog"]


def test_duplicates_are_named(tmp_path: Path):
    with pytest.raises(ValueError, match=r"duplicate class names.*'cat' \(position 0 .*position 2"):
        resolve_vocabulary("cat,dog, cat")
    path = tmp_path / "names.txt"
    path.write_text("cat\ndog\ncat\n")
    with pytest.raises(ValueError, match=r"'cat' \(line 1 of .*names.txt and line 3 of"):
        resolve_vocabulary(str(path))
    with pytest.raises(ValueError, match=r"'dog' \(index 0 and index 1\)"):
        resolve_vocabulary(["dog", "dog"])


def test_empty_vocabularies_and_names(tmp_path: Path):
    with pytest.raises(ValueError, match="empty vocabulary spec"):
        resolve_vocabulary("  ")
    with pytest.raises(ValueError, match="empty class name at position 1"):
        resolve_vocabulary("cat,,dog")
    with pytest.raises(ValueError, match="empty class name at index 1"):
        resolve_vocabulary(["cat", " "])
    with pytest.raises(ValueError, match="contains no class names"):
        resolve_vocabulary([])
    path = tmp_path / "names.txt"
    path.write_text("# nothing here\n\n")
    with pytest.raises(ValueError, match=r"names file .*names.txt contains no class names"):
        resolve_vocabulary(str(path))


def test_missing_names_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="names file .*missing.txt not found"):
        resolve_vocabulary(str(tmp_path / "missing.txt"))
    with pytest.raises(FileNotFoundError):
        resolve_vocabulary(tmp_path / "missing")


def test_lvis_synonym_lists():
    lists = lvis_synonym_lists(["aerosol can", "bow_(weapon)"])
    assert lists[0][0] == "aerosol can" and "spray can" in lists[0]
    assert lists[1][0] == "bow (weapon)"
    assert all(len(set(s)) == len(s) for s in lists)
    with pytest.raises(ValueError, match=r"not LVIS v1 categories.*'flux capacitor'"):
        lvis_synonym_lists(["cat", "flux capacitor"])


def test_kinds_of_spec(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # --vocab-file my_classes (a missing file without a suffix) is an error, not a class
    with pytest.raises(FileNotFoundError, match="--vocab-file my_classes not found"):
        resolve_vocabulary("my_classes", kind="file", option="--vocab-file")
    assert resolve_vocabulary("my_classes", kind="names") == ["my_classes"]
    (tmp_path / "my_classes").write_text("cat\ndog\n")
    assert resolve_vocabulary("my_classes") == ["cat", "dog"]  # an existing file is a file
    assert resolve_vocabulary("my_classes", kind="file") == ["cat", "dog"]
    with pytest.raises(ValueError, match="names an existing file.*--vocab-file my_classes"):
        resolve_vocabulary("my_classes", kind="names", option="--vocab")
    with pytest.raises(ValueError, match="kind must be one of"):
        resolve_vocabulary("cat", kind="name")
