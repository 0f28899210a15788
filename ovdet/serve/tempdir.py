"""The server's own temp folder: :func:`private_temp_dir`.

``ovdet serve`` writes no file itself (uploads stay in memory), but libraries it imports may:
matplotlib (imported through ``lvis`` by ``ovdet.evaluation``) writes a font cache to
``~/.cache/matplotlib`` or ``$MPLCONFIGDIR``, and anything using :mod:`tempfile` writes to
``$TMPDIR``. While the server runs, both point into one fresh folder, removed when it stops.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["REDIRECTED_ENV", "private_temp_dir"]

REDIRECTED_ENV = ("TMPDIR", "MPLCONFIGDIR")
"""Environment variables pointed at the private folder (read by tempfile and matplotlib)."""


@contextlib.contextmanager
def private_temp_dir(prefix: str = "ovdet-serve-") -> Iterator[Path]:
    """A new folder in the system's temp folder where everything written goes, for the
    duration of the ``with`` block; then the environment is restored and the folder removed.

    Enter it before importing what writes (matplotlib reads ``MPLCONFIGDIR`` once, when it
    is imported).
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    saved_env = {name: os.environ.get(name) for name in REDIRECTED_ENV}
    saved_tempdir = tempfile.tempdir
    try:
        for name in REDIRECTED_ENV:
            os.environ[name] = str(folder)
        tempfile.tempdir = str(folder)
        yield folder
    finally:
        tempfile.tempdir = saved_tempdir
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(folder, ignore_errors=True)
