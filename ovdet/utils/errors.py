"""ovdet's convention for bad input: raise an exception whose message names the culprit (file,
field, index, value) and says what to do; the ``ovdet`` command prints that one line.

Which exception: ``FileNotFoundError`` (a missing file), :class:`InputError` or a subclass
such as ``ovdet.data.datasets.COCOFormatError`` (a file or value that is not what it must
be), ``TypeError`` (a value of the wrong kind). These are *input errors*: the command exits
with status 2. Anything else is a failure of ovdet or of the machine (status 1).
"""

from __future__ import annotations

__all__ = ["INPUT_ERRORS", "InputError"]


class InputError(ValueError):
    """Bad user input (a file, field or value): the message names it and says what to do."""


# exceptions the `ovdet` command reports as bad input (exit status 2)
INPUT_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    ValueError,
    KeyError,
    TypeError,
)
