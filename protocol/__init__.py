"""Strongroom's wire protocol: frames, the msgpack codec, typed messages and the handshake (sans-IO)."""
