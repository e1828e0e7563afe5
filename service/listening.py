"""Whether the service can listen on its address, found out before anything starts.

Binding is the last step of aiohttp's start-up: by then the app has started its engine, and with
``--workers`` each forked worker would fail on its own, each with a traceback. A trial bind first
makes a port in use one line and exit status 1.
"""

from __future__ import annotations

import socket


class ListenError(Exception):
    """The address cannot be listened on (in use, not this host's, a privileged port)."""


def check_can_listen(host: str, port: int) -> None:
    """Bind every address ``host`` names, as asyncio's server will, then let go at once.

    Never with ``SO_REUSEPORT``, even for workers that will use it: a port another server holds —
    another copy of this service included, whose workers would otherwise quietly share our
    connections — is refused.
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        # As asyncio's create_server resolves it: an empty host means every local address.
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {where}: {exc.strerror}") from None
    held: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:  # a family this host lacks (no IPv6): the server skips it as well
                continue
            held.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # Otherwise "::" would claim the IPv4 port too and clash with "0.0.0.0" below.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise ListenError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    finally:
        # Bound, never listening: closing leaves nothing behind (no TIME_WAIT) for the real bind.
        for sock in held:
            sock.close()
