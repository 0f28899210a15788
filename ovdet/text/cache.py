"""``VocabularyCache``: class embeddings memoised on disk, keyed by encoder, prompts and names."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ovdet.text.embeddings import ClassList, build_class_embeddings, normalize_classes
from ovdet.text.encoder import TextEncoder
from ovdet.text.templates import validate_templates
from ovdet.utils.io import atomic_write

# Part of every key: bumped when the prompts a (templates, classes) pair gives change meaning
# (2: templates may hold "{article}", filled with "a" / "an"), so old entries are not reused.
PROMPT_FORMAT = 2


def default_cache_root() -> Path:
    """``$OVDET_CACHE`` if set, else ``~/.cache/ovdet/text``."""
    env = os.environ.get("OVDET_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ovdet" / "text"


class VocabularyCache:
    """On-disk cache of :func:`build_class_embeddings` results.

    Each entry is ``<root>/<key>.pt`` where ``key = sha256(encoder.identity, templates,
    classes, PROMPT_FORMAT)``, ``classes`` being one synonym list per class: two template sets,
    or two synonym lists (their order included), never share an entry. It stores the (C, D)
    tensor together with the identity, templates and classes it was built from (checked on
    read). Writes are atomic (temporary file + rename), so
    concurrent processes never read a partial entry.

    Args:
        root: cache directory (created on first write); default :func:`default_cache_root`.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()

    def key(self, encoder: TextEncoder, classes: ClassList, templates: Sequence[str]) -> str:
        """Hex SHA-256 naming the entry of (encoder weights, templates, classes)."""
        payload = {
            "encoder": encoder.identity,
            "templates": validate_templates(templates),
            "classes": normalize_classes(classes),
            "prompt_format": PROMPT_FORMAT,
        }
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def path(self, encoder: TextEncoder, classes: ClassList, templates: Sequence[str]) -> Path:
        """File of the entry (it may not exist yet)."""
        return self.root / f"{self.key(encoder, classes, templates)}.pt"

    def get(
        self,
        encoder: TextEncoder,
        classes: ClassList,
        templates: Sequence[str],
        *,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """Cached :func:`build_class_embeddings`; computes and stores it on a miss.

        Args:
            encoder, classes, templates, batch_size: as for ``build_class_embeddings``.

        Returns:
            Tensor (C, D) float32 on CPU, L2-normalised rows.
        """
        synonym_lists = normalize_classes(classes)
        templates = validate_templates(templates)
        path = self.path(encoder, synonym_lists, templates)
        if path.is_file():
            entry = torch.load(path, map_location="cpu", weights_only=True)
            if (
                not isinstance(entry, dict)
                or entry.get("classes") != synonym_lists
                or entry.get("templates") != templates
                or entry.get("identity") != encoder.identity
            ):
                raise ValueError(
                    f"vocabulary cache entry {path} does not match its key (was it written by "
                    "another program?); delete it and it will be recomputed"
                )
            return entry["embeddings"]
        embeddings = build_class_embeddings(
            encoder, synonym_lists, templates, batch_size=batch_size
        )
        entry = {
            "embeddings": embeddings,
            "identity": encoder.identity,
            "templates": templates,
            "classes": synonym_lists,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: torch.save(entry, tmp))
        return embeddings
