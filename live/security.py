"""Where live sockets may bind and connect, and CURVE authentication for the ones that leave the host.

Sockets use loopback (``tcp://127.0.0.1:PORT``, ``tcp://localhost:PORT``, ``tcp://[::1]:PORT``) or
``ipc://`` unless ``allow_remote`` is given. Off the host, every socket can use ZeroMQ's CURVE
(encryption and authentication, built into pyzmq) with one key directory shared by the camera, the
engine and the clients (``posestream keys DIR`` writes it):

    DIR/server.key, DIR/server.key_secret   binding side's key pair (cameras, the engine's publisher)
    DIR/client.key, DIR/client.key_secret   connecting side's key pair (the engine's camera input, clients)
    DIR/authorized/*.key                    client public keys a binding side accepts

A binding socket is the CURVE server: it accepts only clients whose public key is in ``authorized/``. A
connecting socket is the CURVE client: it needs the server's public key; a wrong one never connects.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from posestream.core.errors import ConfigError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def check_address(address: str, allow_remote: bool = False) -> str:
    """``address`` if it is a ZeroMQ endpoint we may use; ConfigError saying how to fix it otherwise."""
    scheme, _, rest = address.partition("://")
    if scheme in ("ipc", "inproc") and rest:
        return address
    if scheme != "tcp" or not rest:
        raise ConfigError(f"address {address!r} is not tcp://HOST:PORT or ipc://PATH")
    host = urlsplit(f"tcp://{rest}").hostname or rest.rpartition(":")[0]
    if not rest.rpartition(":")[2].isdigit() and not rest.endswith(":*"):
        raise ConfigError(f"address {address!r} has no port: use tcp://127.0.0.1:5555")
    if host not in LOOPBACK_HOSTS and host.strip("[]") not in LOOPBACK_HOSTS and not allow_remote:
        raise ConfigError(
            f"address {address!r} is not on this host (loopback); a camera or client on another "
            "machine needs --allow-remote, and should use --curve KEY_DIR (see posestream keys)"
        )
    return address


def bound_socket(
    context: zmq.Context,
    kind: int,
    address: str,
    *,
    hwm: int,
    allow_remote: bool = False,
    curve: Curve | None = None,
) -> tuple[zmq.Socket, ThreadAuthenticator | None]:
    """A sending socket bound to a checked address (a CURVE server with its authenticator when ``curve``
    is given), and that authenticator (``stop()`` it after closing the socket). A taken or invalid address
    is a ConfigError that says what to do."""
    check_address(address, allow_remote)
    auth = curve.authenticator(context) if curve else None
    socket = context.socket(kind)
    socket.sndhwm, socket.linger = hwm, 0
    if curve:
        curve.server(socket)
    try:
        socket.bind(address)
    except zmq.ZMQError as exc:
        socket.close(linger=0)
        if auth is not None:
            auth.stop()
        raise ConfigError(
            f"cannot bind {address}: {exc} (another process may hold it: choose another port)"
        ) from exc
    return socket, auth


def connected_socket(
    context: zmq.Context,
    address: str,
    topics: list[bytes],
    *,
    hwm: int,
    allow_remote: bool = False,
    curve: Curve | None = None,
    max_message: int = -1,
) -> zmq.Socket:
    """A SUB socket connected to a checked address, subscribed to ``topics`` (a CURVE client when ``curve``
    is given); ``max_message``: bytes ZeroMQ accepts in one message part (-1: any)."""
    check_address(address, allow_remote)
    socket = context.socket(zmq.SUB)
    socket.rcvhwm, socket.linger = hwm, 0
    socket.setsockopt(zmq.MAXMSGSIZE, max_message)
    if curve:
        curve.client(socket)
    for topic in topics:
        socket.subscribe(topic)
    socket.connect(address)
    return socket


def read_subscriptions(socket: zmq.Socket, prefix: bytes = b"") -> int:
    """Take the (un)subscriptions waiting on an XPUB socket (XPUB_VERBOSE); returns how many more there are
    now (subscriptions less unsubscriptions) of topics starting with ``prefix``."""
    change = 0
    while socket.poll(0, zmq.POLLIN):
        event = socket.recv()
        if event[1:].startswith(prefix):
            change += 1 if event[:1] == b"\x01" else -1 if event[:1] == b"\x00" else 0
    return change


def write_keys(directory: str | os.PathLike) -> Path:
    """A new key directory: a server and a client key pair, and the client's key authorized."""
    directory = Path(directory)
    if (directory / "server.key_secret").exists():
        raise ConfigError(f"{directory} already holds keys; remove it or choose another directory")
    directory.mkdir(parents=True, exist_ok=True)
    zmq.auth.create_certificates(directory, "server")
    client_public, _ = zmq.auth.create_certificates(directory, "client")
    (directory / "authorized").mkdir(exist_ok=True)
    shutil.copy(client_public, directory / "authorized" / "client.key")
    return directory


@dataclass(frozen=True)
class Curve:
    """CURVE keys from a key directory (see the module docstring); None where sockets are plain."""

    directory: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))
        for name in ("server.key", "client.key_secret"):
            if not (self.directory / name).is_file():
                raise ConfigError(
                    f"{self.directory / name} is missing: make a key directory with posestream keys DIR"
                )

    def server(self, socket: zmq.Socket) -> None:
        """Make a binding socket a CURVE server (needs server.key_secret and an authenticator running)."""
        secret = self.directory / "server.key_secret"
        if not secret.is_file():
            raise ConfigError(f"{secret} is missing: the binding side needs the server's secret key")
        public, private = zmq.auth.load_certificate(secret)
        socket.curve_secretkey, socket.curve_publickey, socket.curve_server = private, public, True

    def client(self, socket: zmq.Socket) -> None:
        """Make a connecting socket a CURVE client of the server whose public key is in the directory."""
        public, private = zmq.auth.load_certificate(self.directory / "client.key_secret")
        server_public, _ = zmq.auth.load_certificate(self.directory / "server.key")
        socket.curve_secretkey, socket.curve_publickey, socket.curve_serverkey = (
            private,
            public,
            server_public,
        )

    def authenticator(self, context: zmq.Context) -> ThreadAuthenticator:
        """Started ZAP handler that lets in only the clients in ``authorized/``; ``stop()`` it when done."""
        auth = ThreadAuthenticator(context)
        auth.start()
        auth.configure_curve(domain="*", location=str(self.directory / "authorized"))
        return auth
