"""The ``mirsim`` command line: one thin module per command (or group of commands).

Long work shows progress bars on stderr; with ``--json`` the last line of stdout is one JSON
object. Errors are one line on stderr and exit status 2. Command modules import what their
work needs inside the command, so that starting ``mirsim`` costs little.
"""

from __future__ import annotations

import typer

from mirsim.cli.data import data_app
from mirsim.cli.demo import demo
from mirsim.cli.index import index_app, query
from mirsim.cli.info import info
from mirsim.cli.report import report
from mirsim.cli.reproduce import reproduce_app
from mirsim.cli.serve import serve
from mirsim.cli.tag import tag
from mirsim.cli.train import train

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Learn how people hear similarity between sounds, and search with it.")
app.command()(info)
app.add_typer(data_app, name="data")
app.command()(train)
app.add_typer(reproduce_app, name="reproduce")
app.command()(demo)
app.add_typer(index_app, name="index")
app.command()(query)
app.command()(serve)
app.command()(tag)
app.command()(report)


def main() -> None:  # pragma: no cover - entry point
    app()


__all__ = ["app", "main"]
