"""``mirsim data fetch|info``: download and inspect data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mirsim.cli import options as opt
from mirsim.cli.common import data_options, fail_cleanly, out, progress_bar

data_app = typer.Typer(no_args_is_help=True, help="Data sets: fetch and inspect.")


@data_app.command("fetch")
@fail_cleanly
def data_fetch(
    name: str = typer.Argument(..., help="Data set to download (cyberlioz)."),
    dest: Optional[Path] = typer.Option(None, help="Target directory (default: the user cache)."),
    mirror: Optional[str] = typer.Option(None, help="Base URL of a mirror laid out like the "
                                                   "unpacked data set (default: the public origin)."),
) -> None:
    """Download a data set, checking every file against its recorded SHA-256."""
    from mirsim.datasets.download import fetch_cyberlioz
    from mirsim.errors import UnknownNameError

    if name != "cyberlioz":
        raise UnknownNameError("downloadable data set", name, ["cyberlioz"])
    with progress_bar() as progress:
        task = progress.add_task("cyberlioz", total=None)
        path = fetch_cyberlioz(dest, base_url=mirror,
                               progress=lambda d, t: progress.update(task, completed=d, total=t))
    out.print(f"Cyberlioz seed set ready in {path}")


@data_app.command("info")
@fail_cleanly
def data_info(data: str = typer.Argument(..., help="Data set name, folder or CSV manifest."),
              sol_root: Optional[Path] = opt.SolRoot) -> None:
    """Summarise a data set: items, labels, groups."""
    from mirsim.datasets import load_collection

    c = load_collection(data, **data_options(sol_root))
    out.print(c.summary())
    out.print(c.description)
