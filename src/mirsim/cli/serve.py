"""``mirsim serve INDEX``: the local web app of a sound index (map, play, neighbours, query by
example, search), served by uvicorn.

The server binds 127.0.0.1 unless told otherwise; binding another address prints a warning on
stderr, since anyone who can reach it can then list and download the library's files.

Also runnable on its own: ``python -m mirsim.cli.serve INDEX [--port 8765]``.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
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


def allowed_hosts(host: str) -> list[str]:
    """Host names the server answers when bound to ``host`` (see
    :func:`mirsim.server.create_app`).

    Examples
    --------
    >>> allowed_hosts("127.0.0.1"), allowed_hosts("0.0.0.0")
    (['127.0.0.1', 'localhost'], ['*'])
    >>> allowed_hosts("10.1.2.3"), allowed_hosts("::1")
    (['127.0.0.1', 'localhost', '10.1.2.3'], ['127.0.0.1', 'localhost', '[::1]'])
    """
    base = ["127.0.0.1", "localhost"]
    if host in ("0.0.0.0", "::", "[::]"):
        return ["*"]
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host  # as in Host:
    return base if name in base else base + [name]


def check_port_free(host: str, port: int) -> None:
    """Raise a one-line error if ``host:port`` cannot be listened on (e.g. already in use).

    Examples
    --------
    >>> with socket.socket() as s:
    ...     s.bind(("127.0.0.1", 0)); s.listen()
    ...     check_port_free("127.0.0.1", s.getsockname()[1])
    Traceback (most recent call last):
    ...
    mirsim.errors.MirsimError: cannot listen on 127.0.0.1 port ... (choose another --port)
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port,
                                                             type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            s.bind(address)
    except OSError as exc:
        raise MirsimError(f"cannot listen on {host} port {port}: {exc.strerror or exc} "
                          f"(choose another --port)") from None


@fail_cleanly
def serve(
    index: Path = typer.Argument(..., help="Index directory (`mirsim index build`)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on. Anything but a loopback "
                                               "address exposes the library to the network."),
    port: int = typer.Option(8765, help="Port to listen on."),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb",
                                        help="Largest sound file accepted for query by example "
                                             "(MB)."),
    root: Optional[Path] = typer.Option(None, help="Where the library files now live, if they "
                                                   "moved since the index was built."),
    map_method: str = typer.Option("tsne", "--map", help="Map of the library: tsne (default; "
                                                         "computed once and cached in the "
                                                         "index) or pca (instant)."),
) -> None:
    """Serve a web page to browse, play and search the library of a sound index."""
    import uvicorn

    from mirsim.server import MapSettings, create_app

    if max_upload_mb <= 0:
        raise MirsimError(f"--max-upload-mb must be positive (got {max_upload_mb})")
    try:
        settings = MapSettings(method=map_method)
    except ValueError as exc:
        raise MirsimError(str(exc)) from None
    check_port_free(host, port)
    app = create_app(index, root=root, max_upload_bytes=int(max_upload_mb * 1_000_000),
                     map_settings=settings, warm_map=True, allowed_hosts=allowed_hosts(host))
    if not is_loopback(host):
        err.print(f"[yellow]warning:[/yellow] listening on {host}, not on a loopback address: "
                  f"anyone who can reach this machine can browse and download the library",
                  highlight=False, soft_wrap=True)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"mirsim: serving {index} at http://{shown}:{port}/  (API docs: /docs; Ctrl+C "
              f"stops)", highlight=False, soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def standalone_app() -> typer.Typer:
    """A Typer app holding ``serve`` alone (for ``python -m mirsim.cli.serve``)."""
    app = typer.Typer(add_completion=False)
    app.command()(serve)
    return app


if __name__ == "__main__":  # pragma: no cover
    sys.exit(standalone_app()())
