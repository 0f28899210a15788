"""Per-image vocabularies from captions (``--captions FILE``).

An image's classes are the vocabulary names its captions mention: whole words,
case-insensitive, any whitespace between the words of a name, a plural ``s`` allowed on the
last word (``"two Red Circles"`` mentions ``red circle``). An image whose captions mention no
class -- or that has no caption -- gets no pseudo-boxes.

The file is either a JSON object ``{image file name: caption or [captions]}`` or a COCO
captions json (``{"images": [{"id", "file_name"}], "annotations": [{"image_id",
"caption"}]}``). An image is matched by its file name as listed for the run, else by its
base name when exactly one key has that base name.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ovdet.utils.errors import InputError

__all__ = ["CaptionIndex", "class_pattern", "mentioned_classes"]


def class_pattern(name: str) -> re.Pattern[str]:
    """The regex of a class name as a whole phrase, case-insensitive, plural ``s`` allowed."""
    words = [re.escape(w) for w in name.split()]
    body = r"\s+".join(words)
    return re.compile(rf"(?<!\w){body}s?(?!\w)", re.IGNORECASE)


def mentioned_classes(captions: Sequence[str], patterns: Sequence[re.Pattern[str]]) -> list[int]:
    """Indices of the classes (``patterns`` from :func:`class_pattern`, vocabulary order)
    that any of ``captions`` mentions."""
    return [i for i, p in enumerate(patterns) if any(p.search(c) for c in captions)]


def _read(path: Path) -> object:
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "not found"
        raise FileNotFoundError(f"--captions {path} {what}; give a captions JSON file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"--captions {path} is not a JSON file ({exc})") from exc


def _as_list(value: object, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(c, str) for c in items):
        raise InputError(f"{where} must be a caption string or a list of strings, got {value!r}")
    return list(items)


class CaptionIndex:
    """Captions by image file name, and the classes they mention.

    Args:
        path: the captions file (see the module docstring).
        names: the vocabulary.

    Raises:
        FileNotFoundError, InputError: a missing or malformed file (named, with the entry).
    """

    def __init__(self, path: str | os.PathLike, names: Sequence[str]) -> None:
        self.path = Path(path).expanduser()
        data = _read(self.path)
        where = f"--captions {self.path}"
        if isinstance(data, dict) and isinstance(data.get("annotations"), list):
            self.captions = self._from_coco(data, where)
        elif isinstance(data, dict):
            self.captions = {
                str(k): _as_list(v, f"{where}: the captions of {k!r}") for k, v in data.items()
            }
        else:
            raise InputError(
                f"{where} must be a JSON object: {{image file name: caption(s)}} or a COCO "
                "captions json with 'images' and 'annotations'"
            )
        by_base: dict[str, list[str]] = {}
        for key in self.captions:
            by_base.setdefault(os.path.basename(key), []).append(key)
        self._by_base = {b: keys[0] for b, keys in by_base.items() if len(keys) == 1}
        self.patterns = [class_pattern(n) for n in names]

    @staticmethod
    def _from_coco(data: dict, where: str) -> dict[str, list[str]]:
        images = data.get("images")
        if not isinstance(images, list):
            raise InputError(
                f"{where} is a COCO captions json without an 'images' list; the captions are "
                "matched to images by their file_name"
            )
        files: dict[object, str] = {}
        for i, img in enumerate(images):
            if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
                raise InputError(f"{where}: images[{i}] needs 'id' and 'file_name'")
            files[img["id"]] = str(img["file_name"])
        out: dict[str, list[str]] = {}
        for i, ann in enumerate(data["annotations"]):
            if not isinstance(ann, dict) or not isinstance(ann.get("caption"), str):
                raise InputError(f"{where}: annotations[{i}] needs a 'caption' string")
            if ann.get("image_id") not in files:
                raise InputError(
                    f"{where}: annotations[{i}] has image_id {ann.get('image_id')!r}, which is "
                    "not an id of its 'images'"
                )
            out.setdefault(files[ann["image_id"]], []).append(ann["caption"])
        return out

    def captions_of(self, file_name: str) -> list[str]:
        """The captions of an image (by file name, else by a unique base name); [] if none."""
        if file_name in self.captions:
            return self.captions[file_name]
        key = self._by_base.get(os.path.basename(file_name))
        return [] if key is None else self.captions[key]

    def classes_of(self, file_name: str) -> list[int]:
        """Vocabulary indices of the classes the image's captions mention."""
        return mentioned_classes(self.captions_of(file_name), self.patterns)
