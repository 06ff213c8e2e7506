"""Wire protocols (sans-I/O): see :mod:`voicegrok.protocol.realtime`."""
