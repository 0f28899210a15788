"""What one request to ``ovdet serve`` may ask for: :class:`ServeLimits`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ovdet.utils.errors import InputError

__all__ = ["ServeLimits"]


@dataclass(frozen=True)
class ServeLimits:
    """Caps that keep one request from taking the server's memory or time.

    Attributes:
        max_upload_bytes: largest image file accepted, in bytes (the file as uploaded).
        max_pixels: largest image accepted, width x height of the decoded image; checked from
            the file's header, before the pixels are decoded. Masks are pasted at the
            image's resolution, so this also bounds the memory of a masked result.
        max_vocabulary: most class names in one vocabulary.
        max_name_chars: longest class name, in characters.
        max_caption_chars: longest caption (grounding models), in characters.
        max_pending: most requests in the server at once (running or waiting for the
            model); one more is refused with "busy" (HTTP 503) rather than queued.
    """

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 12_000_000
    max_vocabulary: int = 100
    max_name_chars: int = 100
    max_caption_chars: int = 1000
    max_pending: int = 8

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"ServeLimits.{name} must be an integer >= 1, got {value!r}")

    @property
    def max_head_bytes(self) -> int:
        """Longest json line of a request: the prompt, every character json-escaped
        (``\\uXXXX``, 6 bytes) at worst, and the other fields."""
        names = self.max_vocabulary * (self.max_name_chars + 4)
        return 6 * (names + self.max_caption_chars) + 1024

    @property
    def max_body_bytes(self) -> int:
        """Largest request body: the json line, a newline and the image file."""
        return self.max_head_bytes + 1 + self.max_upload_bytes

    def as_dict(self) -> dict[str, Any]:
        """The limits as a json-able dict (shown by the page)."""
        return asdict(self)
