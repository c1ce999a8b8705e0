"""``mirsim serve INDEX``: the local web app of a sound index (map, play, neighbours, query by
example, search), served by uvicorn.

The server binds 127.0.0.1 unless told otherwise; binding another address prints a warning on
stderr, since anyone who can reach it can then list and download the library's files. Whatever
the address, it answers only requests naming it by an allowed host name (:func:`allowed_hosts`:
the localhost names, the address it is bound to, and the ``--allowed-host`` names), which keeps
web pages of other sites out (DNS rebinding).

Also runnable on its own: ``python -m mirsim.cli.serve INDEX [--port 8765]``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import typer

from mirsim.cli.common import err, fail_cleanly
from mirsim.errors import MirsimError


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost`` or a loopback address).

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("::1")
    (True, True, True)
    >>> is_loopback("0.0.0.0"), is_loopback("192.168.1.10"), is_loopback("example.org")
    (False, False, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: Names of this machine that every server answers (``mirsim.server.app.LOOPBACK_HOSTS``, not
#: imported here: that module needs FastAPI, which other commands do not).
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARDS = ("0.0.0.0", "::", "[::]", "")
#: A DNS name (RFC 1123 labels), optionally ``*.`` + one, as Starlette's host check takes them
#: (``ipaddress`` checks addresses; the standard library has no host-name check).
_HOST_NAME = re.compile(r"(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def host_name(name: str, option: str = "--allowed-host") -> str:
    """``name`` as the ``Host`` header writes it (IPv6 in brackets, lower case), or a
    one-line error (naming ``option``) if it is not a host name or address.

    Examples
    --------
    >>> host_name("Samples.LAN"), host_name("::1"), host_name("192.168.1.10"), host_name("*.lan")
    ('samples.lan', '[::1]', '192.168.1.10', '*.lan')
    >>> host_name("evil.example/x")
    Traceback (most recent call last):
    ...
    mirsim.errors.MirsimError: --allowed-host 'evil.example/x': not a host name or IP address
    """
    bare = name.strip().strip("[]")
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        if _HOST_NAME.fullmatch(name.strip()):
            return name.strip().lower().rstrip(".")
        raise MirsimError(f"{option} {name!r}: not a host name or IP address") from None
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def allowed_hosts(host: str, names: Sequence[str] = ()) -> list[str]:
    """Host names the server answers when bound to ``host``: this machine's local names, the
    address it is bound to (unless a wildcard: ``0.0.0.0``, ``::``) and ``names`` (see
    :func:`mirsim.server.create_app`).

    Examples
    --------
    >>> allowed_hosts("127.0.0.1")
    ['127.0.0.1', 'localhost', '[::1]']
    >>> allowed_hosts("0.0.0.0", ["samples.lan", "192.168.1.10"])
    ['127.0.0.1', 'localhost', '[::1]', 'samples.lan', '192.168.1.10']
    >>> allowed_hosts("10.1.2.3"), allowed_hosts("::1")
    (['127.0.0.1', 'localhost', '[::1]', '10.1.2.3'], ['127.0.0.1', 'localhost', '[::1]'])
    """
    bound = [] if host.strip() in _WILDCARDS else [host_name(host, "--host")]
    hosts: list[str] = []
    for name in [*LOCAL_NAMES, *bound, *(host_name(n) for n in names)]:
        if name not in hosts:
            hosts.append(name)
    return hosts


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: one the system picks), or a one-line error
    (port in use, not permitted, address not on this machine...).

    Examples
    --------
    >>> with listening_socket("127.0.0.1", 0) as s:
    ...     s.getsockname()[1] > 0
    True
    >>> with socket.socket() as s:
    ...     s.bind(("127.0.0.1", 0)); s.listen()
    ...     listening_socket("127.0.0.1", s.getsockname()[1])
    Traceback (most recent call last):
    ...
    mirsim.errors.MirsimError: cannot listen on 127.0.0.1 port ...: Address already in use (choose another --port)
    """
    if not 0 <= port <= 65535:
        raise MirsimError(f"--port must be between 0 and 65535 (got {port})")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]") or None, port,
                                                             type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise MirsimError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = {13: "ports below 1024 need privileges; choose another --port",
                98: "choose another --port", 99: "not an address of this machine"}
        extra = f" ({hint[exc.errno]})" if exc.errno in hint else ""
        raise MirsimError(f"cannot listen on {host} port {port}: {exc.strerror or exc}"
                          f"{extra}") from None
    return sock


def bound_url(sock: socket.socket) -> str:
    """The URL of the server listening on ``sock`` (with the port the system picked).

    Examples
    --------
    >>> with listening_socket("127.0.0.1", 0) as s:
    ...     bound_url(s) == f"http://127.0.0.1:{s.getsockname()[1]}/"
    True
    """
    address, port = sock.getsockname()[:2]
    shown = f"[{address}]" if ":" in address else address
    return f"http://{shown}:{port}/"


@fail_cleanly
def serve(
    index: list[Path] = typer.Argument(..., help="Index directory (`mirsim index build`); "
                                                 "several indexes of the same library built "
                                                 "with other metrics (a group and a "
                                                 "personal one, say): the page switches "
                                                 "between them."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on. Anything but a loopback "
                                               "address exposes the library to the network."),
    port: int = typer.Option(8765, help="Port to listen on (0: any free port; the one chosen "
                                        "is printed)."),
    allowed_host: Optional[list[str]] = typer.Option(
        None, "--allowed-host", help="Also answer requests addressed to this host name or "
                                     "address (repeatable), e.g. the machine's name on the "
                                     "network when --host is 0.0.0.0. Always answered: "
                                     "localhost, 127.0.0.1, [::1] and the --host address."),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb",
                                        help="Largest sound file accepted for query by example "
                                             "(MB)."),
    root: Optional[Path] = typer.Option(None, help="Where the library files now live, if they "
                                                   "moved since the index was built."),
    map_method: str = typer.Option("tsne", "--map", help="Map of the library: tsne (default; "
                                                         "computed once and cached in the "
                                                         "index) or pca (instant)."),
) -> None:
    """Serve a web page to browse, play and search the library of a sound index (or of
    several indexes of one library, one per metric)."""
    import uvicorn

    from mirsim.server import MapSettings, create_app

    if max_upload_mb <= 0:
        raise MirsimError(f"--max-upload-mb must be positive (got {max_upload_mb})")
    try:
        settings = MapSettings(method=map_method)
    except ValueError as exc:
        raise MirsimError(str(exc)) from None
    hosts = allowed_hosts(host, allowed_host or ())
    with listening_socket(host, port) as sock:  # first: a port in use is said at once
        app = create_app(index[0], root=root, max_upload_bytes=int(max_upload_mb * 1_000_000),
                         map_settings=settings, warm_map=True, allowed_hosts=hosts,
                         other_metrics=index[1:])
        _announce(index, host, hosts, sock)
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def _announce(indexes: list[Path], host: str, hosts: list[str], sock: socket.socket) -> None:
    from mirsim.server.app import metric_names

    if not is_loopback(host):
        err.print(f"[yellow]warning:[/yellow] listening on {host}, not on a loopback address: "
                  f"anyone who can reach this machine can browse and download the library "
                  f"(requests must name it as one of: {', '.join(hosts)}; add the names "
                  f"clients use with --allowed-host)", highlight=False, soft_wrap=True)
    what = (str(indexes[0]) if len(indexes) == 1 else
            f"{len(indexes)} metrics ({', '.join(metric_names(indexes))}) of {indexes[0]}")
    err.print(f"mirsim: serving {what} at {bound_url(sock)}  (API docs: /docs; Ctrl+C "
              f"stops)", highlight=False, soft_wrap=True)


def standalone_app() -> typer.Typer:
    """A Typer app holding ``serve`` alone (for ``python -m mirsim.cli.serve``)."""
    app = typer.Typer(add_completion=False)
    app.command()(serve)
    return app


if __name__ == "__main__":  # pragma: no cover
    sys.exit(standalone_app()())
