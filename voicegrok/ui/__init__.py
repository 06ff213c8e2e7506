"""The Textual terminal UI (``voicegrok`` with no arguments in a terminal)."""

from .app import VoicegrokApp
from .backend import Audio, Backend, LocalBackend, Probe, RemoteBackend

__all__ = ["Audio", "Backend", "LocalBackend", "Probe", "RemoteBackend", "VoicegrokApp"]
