"""``mirsim data fetch|info|build``: download, inspect and make data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mirsim.cli import options as opt
from mirsim.cli.common import data_options, fail_cleanly, out, progress_bar

data_app = typer.Typer(no_args_is_help=True, help="Data sets: fetch, inspect and build.")


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
              sol_root: Optional[Path] = opt.SolRoot,
              dimension: Optional[list[str]] = typer.Option(
                  None, help="NAME=RULE: a column of a CSV as a dimension of similarity "
                             "(rules: same-label, shared-tag, tempo, key); repeatable.")) -> None:
    """Summarise a data set: items, labels, groups, dimensions."""
    from mirsim.datasets import load_collection

    options = {**data_options(sol_root), **({"dimensions": dimension} if dimension else {})}
    c = load_collection(data, **options)
    out.print(c.summary())
    out.print(c.description)
    if c.dimensions:
        out.print("dimensions: " + ", ".join(f"{d.name} ({d.rule})" for d in c.dimensions))


@data_app.command("build")
@fail_cleanly
def data_build(
    name: str = typer.Argument(..., help="Data set to make (grooves)."),
    songs: int = typer.Option(200, min=1, help="Number of songs."),
    root: Optional[Path] = typer.Option(None, help="Target directory (default: the user cache)."),
    seed: int = typer.Option(0, min=0, help="Chooses every song's genre, instrumentation, "
                                           "tempo, key and soundfont."),
) -> None:
    """Make a rendered data set (cached: a second build does nothing; an interrupted one
    resumes)."""
    from mirsim.datasets.grooves import load_grooves
    from mirsim.errors import UnknownNameError

    if name != "grooves":
        raise UnknownNameError("buildable data set", name, ["grooves"])
    with progress_bar() as progress:
        task = progress.add_task("grooves", total=songs)
        c = load_grooves(root, songs, seed,
                         progress=lambda d, t: progress.update(task, completed=d, total=t))
    out.print(c.summary())
    out.print(f"songs in {Path(c.items['path'][0]).parent.parent}")
