"""The ``mirsim`` command line: one thin module per command (or group of commands), mounted
on one Typer app in :mod:`mirsim.cli.commands`.

Long work shows progress bars on stderr; with ``--json`` the last line of stdout is one JSON
object. Errors are one line on stderr and exit status 2. Command modules import what their
work needs inside the command, so that starting ``mirsim`` costs little. (This package's
``__init__`` imports nothing, so ``python -m mirsim.cli.index`` runs that module alone.)
"""

from mirsim._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {"app": ".commands", "main": ".commands"})
__all__ = ["app", "main"]
