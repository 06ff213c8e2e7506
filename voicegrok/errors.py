"""Errors a user can act on. Their message is one line that names the problem and the fix."""

from __future__ import annotations

__all__ = [
    "AudioDeviceError",
    "AudioInputError",
    "ModelError",
    "ServiceError",
    "UsageError",
    "VoicegrokError",
    "first_line",
]


class VoicegrokError(Exception):
    """Base class: ``str(error)`` is shown to the user as it is, without a traceback."""


class ModelError(VoicegrokError):
    """A model is missing, unknown or cannot be loaded."""


class ServiceError(VoicegrokError):
    """A server voicegrok relies on (``--llm-url``) is unreachable or failed a request."""


class AudioInputError(VoicegrokError):
    """An audio file or buffer cannot be used (missing, not audio, empty, silent)."""


class AudioDeviceError(VoicegrokError):
    """A sound device is missing, busy or refuses the format."""


class UsageError(VoicegrokError):
    """The request itself is wrong (e.g. text too long)."""


def first_line(e: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]
