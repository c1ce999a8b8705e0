"""``mirsim report RUN_DIR``: one self-contained HTML page about a run (metrics, map,
distance heatmap, playable neighbours), with its plots also saved as PNG files;
``mirsim report TEST_DIR``: the same for a listening test (what the listeners said and how
far they agree: :mod:`mirsim.reports.listening`).

Also runnable on its own: ``python -m mirsim.cli.report RUN_DIR [--out FILE]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mirsim.cli.common import err, fail_cleanly, out, progress_bar


@fail_cleanly
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of `mirsim train`, `mirsim "
                                                 "demo`, `mirsim reproduce table1` or "
                                                 "`mirsim reproduce linear-methods`; or a "
                                                 "listening test directory (`mirsim listen "
                                                 "design`).")],
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="HTML file to write (default: RUN_DIR/report.html); the PNGs are "
                      "written beside it.")] = None,
    queries: Annotated[int, typer.Option(help="Queries whose 5 nearest neighbours are listed, "
                                              "playable (one per label, drawn at random).")] = 3,
    max_items: Annotated[int, typer.Option(help="Most items drawn in the map and the heatmap "
                                                "(a seeded random sample above that).")] = 2000,
    data: Annotated[str | None, typer.Option(help="The run's data set, if it is no longer "
                                                  "where the run's config.json says.")] = None,
    sol_root: Annotated[Path | None, typer.Option(help="SOL library root (extended set), as "
                                                       "given to `mirsim train`.")] = None,
    workers: Annotated[int, typer.Option(help="Processes for feature extraction (features are "
                                              "normally read from the cache).")] = 1,
) -> None:
    """Write an HTML report of a run: metrics, a map and a distance heatmap of the
    embeddings, and playable nearest neighbours of a few queries. Of a listening test: the
    agreement between its listeners, the human reference, true rates per condition."""
    from mirsim.reports import build_report

    progress, task = progress_bar(), []

    def on_features(done: int, total: int) -> None:  # a bar only once there is work
        if not task:
            progress.start()
            task.append(progress.add_task("features", total=total))
        progress.update(task[0], completed=done, total=total)

    try:
        result = build_report(run_dir, out_path, n_queries=queries, max_items=max_items,
                              data=data, data_options={"sol_root": sol_root} if sol_root else {},
                              n_jobs=workers, progress=on_features)
    finally:
        if task:
            progress.stop()
    for note in result.notes:
        err.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)
    out.print(str(result.html), highlight=False, soft_wrap=True)


def standalone_app() -> typer.Typer:
    """A Typer app holding ``report`` alone (for ``python -m mirsim.cli.report``)."""
    app = typer.Typer(add_completion=False)
    app.command()(report)
    return app


if __name__ == "__main__":  # pragma: no cover
    sys.exit(standalone_app()())
