"""voicegrok: a real-time voice assistant that runs entirely on your own machine."""

__version__ = "0.1.0"
