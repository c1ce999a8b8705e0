"""``mirsim reproduce ...``: the tables of the papers, resumable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from mirsim.cli import options as opt
from mirsim.cli.common import (data_options, err, fail_cleanly, load_features_with_progress,
                               out, progress_bar, set_threads)

reproduce_app = typer.Typer(no_args_is_help=True, help="Reproduce the tables of the papers.")


@reproduce_app.command("table1")
@fail_cleanly
def reproduce_table1(
    data: str = typer.Option("cyberlioz-extended", help="Data set."),
    features: str = typer.Option("mfcc,scat1d,jtfs,musicnn-msd",
                                 help="Comma-separated features (columns)."),
    models: Optional[str] = typer.Option(None, help="Comma-separated models (rows; default: "
                                                    "the paper's six)."),
    protocol: str = typer.Option("kfold", help="kfold (the paper's), group-kfold or loo."),
    folds: int = typer.Option(5, help="Number of folds."),
    seed: int = typer.Option(0, help="Seed."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p",
                                              help="MODEL:KEY=VALUE override, e.g. an-gnn:epochs=20."),
    loss: Optional[str] = opt.Loss,
    miner: Optional[str] = opt.Miner,
    distance: Optional[str] = opt.Distance,
    sampler: Optional[str] = opt.Sampler,
    sol_root: Optional[Path] = opt.SolRoot,
    workers: int = opt.Workers,
    jobs: int = opt.Jobs,
    threads: Optional[int] = opt.Threads,
    metrics: str = typer.Option("ii_p_at_5", help="Comma-separated metrics shown in the "
                                                  "Markdown table (p_at_1, p_at_5, ii_p_at_5, "
                                                  "map_at_r; with --judgments also "
                                                  "triplet_agreement, triplet_agreement_high, "
                                                  "added by default); the JSON has all of "
                                                  "them."),
    judgments: Optional[str] = opt.Judgments,
    runs: Optional[Path] = opt.Runs,
    resume: Optional[Path] = typer.Option(None, help="Continue the unfinished run in this run "
                                                     "directory: its saved configuration is "
                                                     "used, its finished cells are kept."),
    as_json: bool = typer.Option(False, "--json", help="Last stdout line: the table as JSON."),
) -> None:
    """The AN-GNN paper's Table 1: ii-P@5 of each model on each feature (mean ± std).

    The table is saved in the run directory after every cell; an interrupted run continues
    with ``--resume RUN_DIR``. --loss, --miner, --distance and --sampler apply to every model
    that has one.
    """
    from mirsim.artefacts.files import write_json, write_text_atomic
    from mirsim.artefacts.runs import create_run_dir
    from mirsim.errors import MirsimError, UnknownNameError
    from mirsim.experiments.experiment import REPORTED_METRICS
    from mirsim.experiments.judgments import JUDGMENT_METRICS, judgment_metrics, load_judgments
    from mirsim.experiments.table1 import (load_unfinished_table1, run_table1, table1_config,
                                           table1_markdown)
    from mirsim.models import table1_models

    from mirsim.artefacts.runs import runs_root

    runs_root(runs)  # an unwritable --runs is refused before any work
    set_threads(threads)
    metric_list = [m.strip() for m in metrics.split(",") if m.strip()]
    for m in metric_list:
        if m not in REPORTED_METRICS + JUDGMENT_METRICS:
            raise UnknownNameError("metric", m, REPORTED_METRICS + JUDGMENT_METRICS)
    if resume is not None:
        if judgments is not None:
            raise MirsimError("--judgments cannot be changed on --resume: the run's saved "
                              "configuration says which judgments it uses")
        config, done = load_unfinished_table1(resume)
        listeners = load_judgments(config["judgments"]) if config.get("judgments") else None
        run_dir = resume
        err.print(f"continuing {run_dir}: {sum(map(len, done.values()))} finished cell(s) kept",
                  highlight=False)
    else:
        listeners = load_judgments(judgments) if judgments else None  # before any work
        model_list = ([m.strip() for m in models.split(",") if m.strip()] if models
                      else list(table1_models()))
        feature_list = [f.strip() for f in features.split(",") if f.strip()]
        config = table1_config(data, feature_list, model_list, protocol, folds, seed, param,
                               sol_root, loss=loss, miner=miner, distance=distance,
                               sampler=sampler,
                               judgments=None if listeners is None else listeners.source)
        run_dir, done = None, {}
    available = judgment_metrics(listeners)
    wrong = [m for m in metric_list if m in JUDGMENT_METRICS and m not in available]
    if wrong:
        raise MirsimError(f"--metrics {wrong[0]}: needs --judgments with listener groupings"
                          if listeners is not None else
                          f"--metrics {wrong[0]}: the triplet agreement needs --judgments FILE")
    metric_list += [m for m in available if m not in metric_list]
    sol = Path(config["sol_root"]) if config.get("sol_root") else None
    sets = [load_features_with_progress(config["data"], f, {}, workers, data_options(sol))
            for f in config["features"]]
    if run_dir is None:
        run_dir = create_run_dir(f"table1-{sets[0].collection.name}-{config['protocol']}", runs)
        write_json(run_dir / "config.json", config)
    with progress_bar() as progress:
        task = progress.add_task("table 1", total=len(config["models"]) * len(sets))
        table = run_table1(sets, config["models"], config["protocol"], config["folds"],
                           config["seed"], config["model_params"],
                           on_cell=lambda m, f, c: progress.advance(task), n_jobs=jobs,
                           done=done, on_table=lambda t: write_json(run_dir / "table1.json", t),
                           judgments=listeners)
    md = table1_markdown(table, metric_list)
    write_json(run_dir / "table1.json", table)
    write_text_atomic(run_dir / "table1.md", md + "\n")
    if as_json:
        err.print(f"run directory: {run_dir}", highlight=False)
        print(json.dumps({**table, "run_dir": str(run_dir)}))
    else:
        out.print(md, highlight=False, soft_wrap=True)
        out.print(f"run directory: {run_dir}", highlight=False)
