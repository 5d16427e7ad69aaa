"""sd_notify: tell systemd (or the quickstart) that a daemon is READY or STOPPING."""

from __future__ import annotations

import os
import socket


def sd_notify(state: str) -> bool:
    """Send one state line to $NOTIFY_SOCKET; return False when there is no socket to tell."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode())
        except OSError:
            return False
    return True
