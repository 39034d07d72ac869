"""Container health check: healthy when POSESTREAM_HEALTH_ADDR (host:port of `posestream live --publish`) is
unset (a batch or track container), or when that port accepts a connection (the live engine is serving)."""

import os
import socket
import sys

address = os.environ.get("POSESTREAM_HEALTH_ADDR")
if address:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        print(f"posestream live is not serving on {address}: {exc}", file=sys.stderr)
        sys.exit(1)
