"""``mirsim train``: one cross-validated experiment, written to a run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

import mirsim
from mirsim.errors import MirsimError
from mirsim.cli import options as opt
from mirsim.cli.common import (OWN_SOUND_COLUMNS, data_options, device_params,
                               dimensions_table, err,
                               fail_cleanly,
                               human_reference_row,
                               load_features_with_progress, metrics_table, out, progress_bar,
                               queries_note, set_threads)


#: What ``mirsim train`` learns without ``--feature`` and ``--model``: the configuration that
#: generalises best to new sounds (README, *Which metric generalises*).
DEFAULT_FEATURE, DEFAULT_MODEL = "jtfs", "lda"


@fail_cleanly
def train(
    data: str = typer.Option("cyberlioz", help="Data set name, folder or CSV manifest "
                                               "(default: the 78 real Cyberlioz sounds)."),
    feature: str = typer.Option(DEFAULT_FEATURE, help="Input feature (default: joint "
                                                      "time-frequency scattering)."),
    model: str = typer.Option(DEFAULT_MODEL, help="Metric model (default: LDA, the best "
                                                  "on new sounds)."),
    protocol: str = typer.Option("group-kfold", help="group-kfold (new sounds: the default), "
                                                     "kfold (the AN-GNN paper's) or loo."),
    folds: int = typer.Option(5, help="Number of folds (ignored by loo)."),
    seed: int = typer.Option(0, help="Seed of the split and of the model."),
    param: Optional[list[str]] = opt.Param,
    loss: Optional[str] = opt.Loss,
    miner: Optional[str] = opt.Miner,
    distance: Optional[str] = opt.Distance,
    sampler: Optional[str] = opt.Sampler,
    feature_param: Optional[list[str]] = typer.Option(None, "--feature-param",
                                                      help="Feature parameter KEY=VALUE."),
    sol_root: Optional[Path] = opt.SolRoot,
    workers: int = opt.Workers,
    jobs: int = opt.Jobs,
    threads: Optional[int] = opt.Threads,
    judgments: Optional[str] = opt.Judgments,
    listener: Optional[str] = typer.Option(
        None, "--listener", help="Learn a personal metric from this listener's answers in "
                                 "--judgments (a CSV or a listening-test directory) on top of "
                                 "--model fitted on the labels; evaluated on the listener's "
                                 "held-out triplets, folds by sound (--protocol is not used)."),
    save_model: bool = typer.Option(True, help="Also fit on all items and save the model."),
    device: str = opt.Device,
    runs: Optional[Path] = opt.Runs,
    as_json: bool = opt.Json,
) -> None:
    """Run one experiment: cross-validated retrieval metrics of one model on one feature.

    A folder without sub-folders has no labels: only a self-supervised model (simclr) trains
    on it, and what is measured is whether a view of a held-out sound finds its own sound."""
    from mirsim.artefacts.runs import create_run_dir
    from mirsim.evaluation.protocols import make_protocol
    from mirsim.experiments.experiment import fit_final_model, run_experiment, save_run
    from mirsim.experiments.judgments import judgments_for, load_judgments
    from mirsim.experiments.specs import model_params, params_config, parse_params
    from mirsim.features import extractor_class, make_extractor
    from mirsim.models import make_model

    from mirsim.artefacts.runs import runs_root

    runs_root(runs)  # an unwritable --runs is refused before any work
    set_threads(threads)
    make_protocol(protocol, folds, seed)
    params = model_params(model, param, loss=loss, miner=miner, distance=distance,
                          sampler=sampler)
    params.update(device_params(model, device))
    make_model(model, **params)  # every parameter checked before any work
    fparams = parse_params(feature_param, extractor_class(feature), "feature")
    make_extractor(feature, **fparams)
    if listener is not None:
        if not judgments:
            raise MirsimError("--listener needs --judgments (a CSV or a listening-test "
                              "directory with that listener's answers)")
        from mirsim.cli.personal import train_personal

        return train_personal(data=data, feature=feature, fparams=fparams, model=model,
                              params=params, folds=folds, seed=seed, workers=workers,
                              sol_root=sol_root, judgments=judgments, listener=listener,
                              save_model=save_model, runs=runs, as_json=as_json)
    listeners = load_judgments(judgments) if judgments else None  # a bad file: before any work
    fs = load_features_with_progress(data, feature, fparams, workers, data_options(sol_root),
                                     model, {"seed": seed, **params})
    matched = judgments_for(fs, listeners) if listeners is not None else None
    with progress_bar() as progress:
        task = progress.add_task(f"{model} {protocol}", total=None)
        result = run_experiment(fs, model, protocol, folds, seed, params,
                                on_fold=lambda i, n: progress.update(task, completed=i, total=n),
                                n_jobs=jobs, judgments=matched)
    final = fit_final_model(fs, model, seed, params) if save_model else None
    run_dir = create_run_dir(f"{fs.collection.name}-{feature}-{model}-{result.protocol}", runs)
    config = {"command": "train", "data": data, "feature": feature, "feature_params": fparams,
              "feature_identity": fs.feature_identity, "model": model,
              "model_params": params_config(result.model_params), "protocol": result.protocol,
              "folds": result.folds, "seed": seed, "distance": result.distance,
              "judgments": None if matched is None else matched.source,
              "mirsim_version": mirsim.__version__}
    save_run(run_dir, config, fs, [result], final)
    j = result.to_json()
    if not as_json:
        out.print(fs.collection.description)
        title = f"{fs.collection.name} · {feature} · {result.protocol} · {result.distance}"
        if fs.labelled:
            out.print(metrics_table(title, [(model, j)], reference=human_reference_row(j)))
            if "dimensions" in j["metrics"]:
                out.print(dimensions_table("triplet prediction of held-out items, per "
                                           "dimension", j["metrics"]["dimensions"]))
        else:
            reference = j["reference"]
            out.print(metrics_table(title, [(model, j), (f"{reference['model']} (reference)",
                                                         reference)], OWN_SOUND_COLUMNS))
            out.print(j["note"], highlight=False)
        note = queries_note(j)
        if note:
            out.print(note, highlight=False)
        out.print(f"run directory: {run_dir}", highlight=False)
    else:
        err.print(f"run directory: {run_dir}", highlight=False)
        j["run_dir"] = str(run_dir)
        print(json.dumps(j))
