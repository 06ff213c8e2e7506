"""The Realtime API server: sessions (logic) and the websocket adapter."""
