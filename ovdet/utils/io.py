"""File output that never leaves a partial file: the one home of ovdet's atomic writes.

Every writer here goes through a temporary file in the destination folder and
``os.replace``: readers (and a run that resumes after a crash or ``kill -9``) see either the
old file or the complete new one. ``durable=True`` adds ``fsync`` of the file and of its
folder, so the result also survives a power loss; it costs a disk flush per file and is used
where finished work is recorded (region-store metadata, resumable results).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_sha256",
    "fsync_dir",
    "write_json",
]


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename or file creation in folder ``path`` durable (no-op where impossible)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[str], None],
    *,
    durable: bool = False,
    mkdir: bool = True,
) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``.

    For writers that take a file name (``torch.save``, ``safetensors.torch.save_file``,
    ``PIL.Image.save`` with an explicit ``format``). On any error the temporary file is
    removed and ``path`` is left as it was.

    Args:
        path: destination.
        write: writes the whole content to the path it is given.
        durable: fsync the file and its folder (survives a power loss, not only a crash).
        mkdir: create the parent folder first.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would (umask applied)
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, **kwargs: Any) -> Path:
    """Write ``data`` to ``path`` atomically (keyword arguments of :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), **kwargs)


def atomic_write_text(path: str | os.PathLike, text: str, **kwargs: Any) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (keyword arguments of :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode("utf-8"), **kwargs)


def write_json(
    path: str | os.PathLike,
    obj: Any,
    *,
    indent: int | None = None,
    sort_keys: bool = False,
    compact: bool = False,
    newline: bool = True,
    durable: bool = False,
) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically.

    Args:
        path: destination (its folder is created).
        obj: JSON-serialisable object.
        indent: ``json.dumps`` indent (None: one line).
        sort_keys: sort object keys.
        compact: no spaces after separators and non-ASCII kept as is (large annotation files).
        newline: end the file with a newline.
        durable: see :func:`atomic_write`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    kwargs: dict[str, Any] = {"indent": indent, "sort_keys": sort_keys}
    if compact:
        kwargs.update(separators=(",", ":") if indent is None else (",", ": "), ensure_ascii=False)
    text = json.dumps(obj, **kwargs) + ("\n" if newline else "")
    return atomic_write_text(path, text, durable=durable)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
