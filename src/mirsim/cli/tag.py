"""``mirsim tag AUDIO``: the most likely tags of a sound by a pretrained musicnn network.

The networks are the ``musicnn`` package's (``pip install --no-deps musicnn==0.1.0``), ported
to PyTorch (:mod:`mirsim.features.musicnn`). The whole sound is analysed in 3 s patches and the
tag probabilities are averaged over them, as the original's ``top_tags``.

Also runnable on its own: ``python -m mirsim.cli.tag AUDIO [--model MSD_musicnn]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mirsim.cli.common import fail_cleanly, out
from mirsim.errors import MirsimError


@fail_cleanly
def tag(
    audio: Annotated[Path, typer.Argument(help="Sound file to tag.")],
    model: Annotated[str, typer.Option(
        "--model", help="MSD_musicnn, MTT_musicnn, MSD_vgg or MTT_vgg (MSD: Last.fm tags of the "
                        "Million Song Dataset; MTT: MagnaTagATune).")] = "MSD_musicnn",
    k: Annotated[int, typer.Option("-k", "--k", help="Number of tags.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Last stdout line: the tags as "
                                                        "JSON.")] = False,
) -> None:
    """The most likely tags of a sound (a pretrained musicnn network, averaged over 3 s
    patches)."""
    from mirsim.audio import load_audio
    from mirsim.features.musicnn import find_checkpoint, top_tags
    from mirsim.features.musicnn.pipeline import SAMPLE_RATE

    if k < 1:
        raise MirsimError(f"-k must be at least 1 (got {k})")
    find_checkpoint(model)  # unknown model or missing weights: say so before reading audio
    y = load_audio(audio, sr=SAMPLE_RATE)
    tags = top_tags(y, SAMPLE_RATE, model=model, k=k)
    if as_json:
        print(json.dumps({"audio": str(audio), "model": model,
                          "seconds": round(len(y) / SAMPLE_RATE, 3),
                          "tags": [{"tag": t, "probability": round(p, 6)} for t, p in tags]}))
        return
    table = Table(title=f"{audio}: top {len(tags)} tags ({model})", title_justify="left")
    for col, justify in (("#", "right"), ("tag", "left"), ("probability", "right")):
        table.add_column(col, justify=justify)
    for rank, (name, p) in enumerate(tags, 1):
        table.add_row(str(rank), name, f"{p:.3f}")
    out.print(table)


def standalone_app() -> typer.Typer:
    """A Typer app holding ``tag`` alone (for ``python -m mirsim.cli.tag``)."""
    app = typer.Typer(add_completion=False)
    app.command()(tag)
    return app


if __name__ == "__main__":  # pragma: no cover
    sys.exit(standalone_app()())
