"""The ``mirsim`` app: every command module mounted on one Typer group."""

from __future__ import annotations

import shutil
import sys

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from mirsim.cli.data import data_app
from mirsim.cli.demo import demo
from mirsim.cli.index import index_app, query
from mirsim.cli.info import info
from mirsim.cli.listen import listen_app
from mirsim.cli.report import report
from mirsim.cli.reproduce import reproduce_app
from mirsim.cli.serve import serve
from mirsim.cli.tag import tag
from mirsim.cli.train import train



class OneLineErrors(TyperGroup):
    """The ``mirsim`` group: a usage error (a bad option, a value out of range) is one line
    on standard error and exit status 2, like mirsim's own errors, not a framed panel."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except TyperException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `mirsim data`: its help
                typer.echo(exc.format_message(), err=True)
                sys.exit(exc.exit_code)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            message = " ".join(exc.format_message().split())
            typer.echo(f"error: {message}{hint}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _markup_mode() -> str | None:
    """Framed help panels in a wide terminal; plain help, wrapped at word boundaries, in a
    narrow one (panels cut option names and defaults short there)."""
    return "rich" if shutil.get_terminal_size((100, 24)).columns >= NARROW_TERMINAL else None


#: Terminal width (columns) below which help is plain text.
NARROW_TERMINAL = 90

app = typer.Typer(cls=OneLineErrors, add_completion=False, no_args_is_help=True,
                  rich_markup_mode=_markup_mode(),
                  help="Learn how people hear similarity between sounds, and search with it.")
app.command()(info)
app.add_typer(data_app, name="data")
app.command()(train)
app.add_typer(reproduce_app, name="reproduce")
app.command()(demo)
app.add_typer(index_app, name="index")
app.command()(query)
app.command()(serve)
app.add_typer(listen_app, name="listen")
app.command()(tag)
app.command()(report)


def main() -> None:  # pragma: no cover - entry point
    app()


__all__ = ["app", "main"]
