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
    name: str = typer.Argument(..., help="Data set to make: grooves or multitrack."),
    songs: Optional[int] = typer.Option(None, min=1, help="Number of songs (grooves: 200; "
                                                         "multitrack: 199, with every "
                                                         "instrument)."),
    root: Optional[Path] = typer.Option(None, "--root", "--out",
                                        help="Target directory (default: the user cache)."),
    seconds: Optional[float] = typer.Option(None, min=0.1, help="Seconds of every song "
                                                               "(grooves: 30; multitrack: the "
                                                               "first 60)."),
    seed: int = typer.Option(0, min=0, help="Chooses every song's genre, instrumentation, "
                                           "tempo, key and soundfont."),
    soundfont: Optional[str] = typer.Option(None, help="multitrack: the soundfonts songs are "
                                                       "drawn from: fluid, musescore, both "
                                                       "(the default) or a .sf2/.sf3 file."),
    min_instruments: Optional[int] = typer.Option(None, min=1, max=4,
                                                  help="multitrack: how many of drums, bass, "
                                                       "piano and guitar a song needs (1-4; "
                                                       "default 4)."),
) -> None:
    """Make a rendered data set (cached: a second build does nothing; an interrupted one
    resumes)."""
    from mirsim.errors import MirsimError, UnknownNameError

    builders = {"grooves": _build_grooves, "multitrack": _build_multitrack}
    if name not in builders:
        raise UnknownNameError("buildable data set", name, list(builders))
    options = {k: v for k, v in (("soundfont", soundfont),
                                 ("min_instruments", min_instruments)) if v is not None}
    if options and name != "multitrack":
        raise MirsimError(f"--{next(iter(options)).replace('_', '-')} is an option of "
                          f"`data build multitrack`")
    with progress_bar() as progress:
        task = progress.add_task(name, total=songs)
        where = builders[name](root, songs, seconds, seed,
                               lambda d, t: progress.update(task, completed=d, total=t),
                               **options)
    out.print(where)


def _build_grooves(root, songs, seconds, seed, progress) -> str:
    from mirsim.datasets.grooves import load_grooves

    c = load_grooves(root, songs or 200, seed, progress=progress,
                     **({"duration": seconds} if seconds else {}))
    return f"{c.summary()}\nsongs in {Path(c.items['path'][0]).parent.parent}"


def _build_multitrack(root, songs, seconds, seed, progress, soundfont: str = "both",
                      min_instruments: int = 4) -> str:
    from collections import Counter

    from mirsim.datasets.multitrack import build_multitrack, soundfont_choice

    m = build_multitrack(root, songs or 199, seed, progress=progress,
                         soundfonts=soundfont_choice(soundfont),
                         min_instruments=min_instruments,
                         **({"seconds": seconds} if seconds else {}))
    sources = Counter(t["source"].get("package", "mma") for t in m["tracks"])
    return (f"multitrack: {len(m['tracks'])} songs ("
            + ", ".join(f"{n} {k}" for k, n in sources.items())
            + f"), {len(m['skipped'])} skipped (reasons in manifest.json)\n"
            f"tracks in {m['root']} (Slakh2100's layout)")
