"""The Textual terminal UI (``voicegrok`` with no arguments in a terminal)."""

from .app import VoicegrokApp
from .backend import Audio, Backend, LocalBackend, Probe

__all__ = ["Audio", "Backend", "LocalBackend", "Probe", "VoicegrokApp"]
