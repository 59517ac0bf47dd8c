"""host:port arguments of the run commands, and the check that a port is free before a role starts."""

from __future__ import annotations

import socket


class AddressError(ValueError):
    pass


def parse_hostport(value: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = default_host, value
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        raise AddressError(f"{value!r}: expected HOST:PORT")
    if not 0 <= number <= 65535:
        raise AddressError(f"{value!r}: port out of range")
    return host, number


def ensure_free(host: str, port: int, role: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise AddressError(f"cannot listen for {role} on {host}:{port}: {exc.strerror or exc}") from None
