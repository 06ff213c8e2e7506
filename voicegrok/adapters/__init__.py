"""Adapters: the only code that touches the outside world (files, sound devices, sockets)."""
