"""Command line of sound indexes: ``mirsim index build|info|verify`` and ``mirsim query``.

``index_app`` is a Typer sub-app (mounted as ``mirsim index``) and :func:`query` a command
(``mirsim query``). Long work shows progress bars on stderr; with ``--json`` the last line of
stdout is one JSON object. Errors are one line on stderr and exit status 2; ``index verify``
exits with status 1 when it finds problems.

Also runnable on its own: ``python -m mirsim.cli.index index build DIR --out INDEX``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import typer
from rich.progress import Progress
from rich.table import Table

from mirsim.cli import options as opt
from mirsim.cli.common import err, fail_cleanly, out, progress_bar

index_app = typer.Typer(no_args_is_help=True,
                        help="Sound indexes: build, inspect and check the index of a library.")


_STAGES = {"hash": "hashing files", "cluster": "Dask cluster", "features": "features",
           "embed": "embedding",
           "index": "FAISS index", "write": "writing", "verify": "hashing files"}


def _stage_updater(progress: Progress) -> Callable[[str, int, int], None]:
    """A ``progress(stage, done, total)`` callback showing one bar per stage."""
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(_STAGES.get(stage, stage), total=total or None)
        progress.update(tasks[stage], completed=done, total=total or None)

    return update


@index_app.command("build")
@fail_cleanly
def index_build(
    directory: Path = typer.Argument(..., help="Library folder, walked recursively (wav, flac, "
                                               "ogg, mp3, aiff)."),
    out_dir: Path = typer.Option(..., "--out", help="Index directory to create, or to update "
                                                    "(only new or changed sounds are analysed)."),
    run: Optional[Path] = typer.Option(None, "--run", help="A `mirsim train` run directory: "
                                                           "embed with its feature and model."),
    feature: Optional[str] = typer.Option(None, help="Without --run: this feature (default "
                                                     "mfcc), standardised with the library's "
                                                     "own statistics."),
    feature_param: Optional[list[str]] = typer.Option(None, "--feature-param",
                                                      help="Feature parameter KEY=VALUE "
                                                           "(with --feature)."),
    workers: int | None = typer.Option(None, help="Worker processes for feature extraction "
                                                  "(default: the cores, at most 2): joblib "
                                                  "processes, or the size of the local Dask "
                                                  "cluster with --scheduler local."),
    scheduler: str | None = typer.Option(None, help="Extract features on a Dask cluster: "
                                                    "'local' starts one of --workers processes "
                                                    "for this build; an address "
                                                    "(tcp://host:8786) uses a running one, whose "
                                                    "workers must see DIR at the same path."),
    approximate: str = typer.Option("auto", help="FAISS index: auto (exact below 100,000 "
                                                 "sounds, HNSW from there), never, hnsw or ivf."),
    group_by: str = typer.Option("folder", help="What counts as the same sound for `query "
                                                "--exclude-same-group`: folder or file."),
    rehash: bool = typer.Option(False, help="Hash every file again, even when its size and "
                                            "modification time are unchanged."),
    seed: int = typer.Option(0, help="Seed of the approximate index's calibration."),
    wait: bool = typer.Option(False, "--wait", help="If another build is writing the same "
                                                    "--out, wait for it to finish (default: "
                                                    "fail at once, naming its pid)."),
    as_json: bool = typer.Option(False, "--json", help="Last stdout line: the build report."),
    device: str = opt.Device,
) -> None:
    """Build or update the index of a sound library (written atomically; one build of an
    index at a time)."""
    from mirsim.index import build_index
    from mirsim.training.devices import embedding_device

    n_jobs = _check_workers(workers, scheduler)
    fparams = {}
    if feature_param:
        from mirsim.experiments.specs import parse_params
        from mirsim.features import extractor_class

        fparams = parse_params(feature_param, extractor_class(feature or "mfcc"), "feature")
    with embedding_device(device), progress_bar() as progress:
        report = build_index(directory, out_dir, run_dir=run, feature=feature,
                             feature_params=fparams, approximate=approximate, group_by=group_by,
                             n_jobs=n_jobs, rehash=rehash, seed=seed, scheduler=scheduler,
                             progress=_stage_updater(progress), wait=wait,
                             on_wait=_say_waiting(out_dir))
    _print_build_summary(report, as_json)


def _say_waiting(out_dir: Path) -> Callable[[int | None], None]:
    def say(pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "another process"
        err.print(f"waiting for the build of {out_dir} by {who} to finish...",
                  highlight=False, soft_wrap=True)

    return say


def _check_workers(workers: int | None, scheduler: str | None) -> int:
    """The number of worker processes; refuse --workers for a cluster that has its own."""
    from mirsim.index import SoundIndexError

    if workers is not None and scheduler not in (None, "local"):
        raise SoundIndexError("--workers sets the size of a local cluster; a running cluster "
                              f"({scheduler}) has its own workers (drop --workers)")
    if workers is not None and workers < 1:
        raise SoundIndexError(f"--workers must be at least 1 (got {workers})")
    return min(2, os.cpu_count() or 1) if workers is None else workers


def _print_build_summary(report: dict, as_json: bool) -> None:
    console = err if as_json else out
    engine = report.get("extraction", {})
    if engine.get("engine") == "dask":
        console.print(f"features computed on a Dask cluster ({engine['scheduler']}, "
                      f"{engine['n_workers']} worker(s), {engine['n_tasks']} task(s))",
                      highlight=False, soft_wrap=True)
    console.print(f"indexed {report['n_indexed']} sound(s) of {report['root']}: "
                  f"{report['n_added']} added, {report['n_changed']} changed, "
                  f"{report['n_removed']} removed, {report['n_unchanged']} unchanged; "
                  f"features computed for {report['n_features_computed']} "
                  f"({report['n_features_from_cache']} from the cache, "
                  f"{report['n_features_reused']} reused from the previous index); "
                  f"{report['index_type']} FAISS index, in {report['timings_seconds']['total']:.1f} s",
                  highlight=False, soft_wrap=True)
    if report["skipped"]:
        first = report["skipped"][0]
        err.print(f"[yellow]skipped {report['n_skipped']} file(s)[/yellow] (listed in "
                  f"{Path(report['index']) / 'build_report.json'}); first: {first['path']}: "
                  f"{first['reason']}", highlight=False, soft_wrap=True)
    console.print(f"index: {report['index']}", highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(report))


@index_app.command("info")
@fail_cleanly
def index_info(
    index: Path = typer.Argument(..., help="Index directory."),
    as_json: bool = typer.Option(False, "--json", help="Last stdout line: the information as JSON."),
) -> None:
    """Describe an index: sounds, labels, model and feature, size, build date."""
    from mirsim.index import SoundIndex

    info = SoundIndex.load(index).info()
    if as_json:
        print(json.dumps(info))
        return
    for key in ("index", "root", "n_items", "n_labels", "n_groups", "total_duration_seconds",
                "feature", "feature_identity", "model", "model_id", "run_dir", "embedding_dim",
                "distance", "aspects", "instruments", "index_type", "size_bytes", "built_at",
                "mirsim_version",
                "n_skipped_at_build"):
        value = info[key]
        if isinstance(value, list):
            value = ", ".join(value) or "none"
        out.print(f"{key:24} {value}", highlight=False, soft_wrap=True)
    table = Table(title="labels", title_justify="left")
    table.add_column("label")
    table.add_column("sounds", justify="right")
    for label, n in info["labels"].items():
        table.add_row(label, str(n))
    out.print(table)


@index_app.command("verify")
@fail_cleanly
def index_verify(
    index: Path = typer.Argument(..., help="Index directory."),
    files: bool = typer.Option(True, help="Also hash the library files still on disk and "
                                          "compare them with the manifest."),
    as_json: bool = typer.Option(False, "--json", help="Last stdout line: the report as JSON."),
) -> None:
    """Check that manifest, library files, stored embeddings and FAISS index agree
    (exit status 1 if not)."""
    from mirsim.index import SoundIndex

    loaded = SoundIndex.load(index)
    with progress_bar() as progress:
        report = loaded.verify(check_files=files, progress=_stage_updater(progress))
    console = err if as_json else out
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    for problem in report.problems:
        console.print(f"problem: {problem}", highlight=False, soft_wrap=True)
    console.print(f"{'ok' if report.ok else 'NOT OK'}: {len(loaded)} sounds; checked "
                  + ", ".join(f"{k} {v}" for k, v in report.checked.items()),
                  highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(report.to_json()))
    if not report.ok:
        raise typer.Exit(1)


@fail_cleanly
def query(
    index: Path = typer.Argument(..., help="Index directory."),
    audio: Optional[Path] = typer.Argument(None, help="Sound file to find neighbours of "
                                                      "(inside the library or not)."),
    prototype: Optional[str] = typer.Option(None, "--prototype", metavar="LABEL",
                                            help="Instead of a sound: the sounds nearest to "
                                                 "the prototype of LABEL, a training class "
                                                 "of a prototypical model or a label of the "
                                                 "library (the mean of its sounds)."),
    k: int = typer.Option(10, "-k", "--k", help="Number of neighbours."),
    as_json: bool = typer.Option(False, "--json", help="Last stdout line: the neighbours as JSON."),
    exclude_same_group: bool = typer.Option(False, "--exclude-same-group",
                                            help="Leave out sounds of the query's own group "
                                                 "(its folder, by default)."),
    aspects: Optional[str] = typer.Option(None, "--aspects", metavar="NAME=W,...",
                                          help="Rank by the weighted sum of the aspects' "
                                               "cosine distances (an index built with a csn "
                                               "run, or a per-instrument run: mix, drums, "
                                               "bass, piano), e.g. tempo=1,key=0,genre=0.5; "
                                               "aspects not named weigh 0."),
    aspect: Optional[str] = typer.Option(None, "--aspect", metavar="NAME",
                                         help="Shorthand for --aspects NAME=1: this aspect "
                                              "alone (e.g. --aspect drums: the songs whose "
                                              "drums sound like AUDIO's)."),
    device: str = opt.Device,
) -> None:
    """Find the sounds of an index nearest to a sound file, or to the prototype of a label
    (by the index's distance, or by a weighted mix of its aspects)."""
    from mirsim.index import SoundIndex, SoundIndexError
    from mirsim.training.devices import embedding_device

    if k < 1:
        raise SoundIndexError(f"-k must be at least 1 (got {k})")
    if (audio is None) == (prototype is None):
        raise SoundIndexError("give a sound file (AUDIO) or --prototype LABEL, not "
                              + ("both" if audio is not None else "neither"))
    if prototype is not None and exclude_same_group:
        raise SoundIndexError("--exclude-same-group needs a query sound; a prototype has no "
                              "group")
    weights = _aspect_weights(aspects, aspect, prototype)
    with embedding_device(device):  # the index's model is loaded, and embeds, in here
        loaded = SoundIndex.load(index)
        if prototype is not None:
            result = loaded.query_prototype(prototype, k=k)
        elif weights is not None:
            result = loaded.query_aspects(audio, weights, k=k,
                                          exclude_same_group=exclude_same_group)
        else:
            result = loaded.query_audio(audio, k=k, exclude_same_group=exclude_same_group)
    if as_json:
        print(json.dumps(result.to_json()))
        return
    table = Table(title=_query_title(result, audio, exclude_same_group), title_justify="left")
    names = list(result.aspects["weights"]) if result.aspects is not None else []
    for col, justify in (("#", "right"), ("distance", "right"), *((a, "right") for a in names),
                         ("label", "left"), ("path", "left")):
        table.add_column(col, justify=justify)
    for n in result.results:
        per = [f"{n.aspect_distances[a]:.4f}" for a in names]
        table.add_row(str(n.rank), f"{n.distance:.4f}", *per, n.label, n.relpath)
    out.print(table)
    out.print("distance: " + _distance_note(result), highlight=False, soft_wrap=True)


def _aspect_weights(aspects: Optional[str], aspect: Optional[str],
                    prototype: Optional[str]) -> Optional[str]:
    """The ``--aspects`` weights (``--aspect NAME`` is ``NAME=1``), checked against the
    index later; ``None`` without either."""
    from mirsim.index import SoundIndexError

    if aspects is not None and aspect is not None:
        raise SoundIndexError("give --aspects NAME=W,... or --aspect NAME, not both")
    weights = aspects if aspect is None else f"{aspect}=1"
    if weights is not None and prototype is not None:
        raise SoundIndexError("--aspects needs a query sound (AUDIO), not --prototype")
    return weights


def _distance_note(result) -> str:
    """What the distances of a result are."""
    if result.aspects is not None:
        mix = " + ".join(f"{w:g} × {name}" for name, w in result.aspects["weights"].items()
                         if w > 0)
        return (f"weighted sum of the aspects' cosine distances (1 - cos): {mix} "
                f"({result.aspects['search']} search)")
    return ("cosine (1 - cos) between embeddings" if result.distance == "cosine"
            else "Euclidean (not squared) between embeddings")


def _query_title(result, audio: Optional[Path], exclude_same_group: bool) -> str:
    """What the neighbours are nearest to, and what was left out."""
    about = result.prototype
    if about is not None:
        what = ("the model's prototype of its training class" if about["source"] == "model"
                else f"the mean of the library's {about['n_items']} sound(s) labelled")
        return f"nearest to the prototype of '{about['label']}' ({what} '{about['label']}')"
    note = " (in the index: itself left out)" if result.in_index else ""
    if exclude_same_group:
        note += (f"; group '{result.group}' left out" if result.group is not None
                 else "; its group is unknown (outside the library), nothing else left out")
    return f"nearest to {audio}{note}"


def standalone_app() -> typer.Typer:
    """A Typer app holding ``index`` and ``query`` alone (for ``python -m mirsim.cli.index``)."""
    app = typer.Typer(add_completion=False, no_args_is_help=True)
    app.add_typer(index_app, name="index")
    app.command()(query)
    return app


if __name__ == "__main__":  # pragma: no cover
    sys.exit(standalone_app()())
