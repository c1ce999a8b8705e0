"""``mirsim reproduce ...``: the tables of the papers, resumable."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import typer

from mirsim.cli import options as opt
from mirsim.cli.common import (data_options, err, fail_cleanly, load_features_with_progress,
                               out, progress_bar, set_threads, takes_device)

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
    device: str = opt.Device,
    metrics: str = typer.Option("ii_p_at_5", help="Comma-separated metrics shown in the "
                                                  "Markdown table (p_at_1, p_at_5, ii_p_at_5, "
                                                  "map_at_r; with --judgments also "
                                                  "triplet_agreement, triplet_agreement_high, "
                                                  "added by default); the JSON has all of "
                                                  "them."),
    judgments: Optional[str] = opt.Judgments,
    runs: Optional[Path] = opt.Runs,
    resume: Optional[Path] = opt.Resume,
    as_json: bool = opt.TableJson,
) -> None:
    """The AN-GNN paper's Table 1: ii-P@5 of each model on each feature (mean ± std).

    The table is saved in the run directory after every cell; an interrupted run continues
    with ``--resume RUN_DIR``. --loss, --miner, --distance and --sampler apply to every model
    that has one.
    """
    from mirsim.errors import MirsimError, UnknownNameError
    from mirsim.experiments.experiment import REPORTED_METRICS
    from mirsim.experiments.judgments import JUDGMENT_METRICS, judgment_metrics, load_judgments
    from mirsim.experiments.table1 import TABLE1, run_table1, table1_config, table1_markdown
    from mirsim.models import table1_models

    from mirsim.artefacts.runs import runs_root

    runs_root(runs)  # an unwritable --runs is refused before any work
    set_threads(threads)
    metric_list = [m.strip() for m in metrics.split(",") if m.strip()]
    for m in metric_list:
        if m not in REPORTED_METRICS + JUDGMENT_METRICS:
            raise UnknownNameError("metric", m, REPORTED_METRICS + JUDGMENT_METRICS)
    if resume is not None and judgments is not None:
        raise MirsimError("--judgments cannot be changed on --resume: the run's saved "
                          "configuration says which judgments it uses")
    listeners = load_judgments(judgments) if judgments else None  # a bad file: before any work

    def new_config() -> dict:
        model_list = ([m.strip() for m in models.split(",") if m.strip()] if models
                      else list(table1_models()))
        return table1_config(data, _names(features), model_list, protocol, folds, seed, param,
                             sol_root, loss=loss, miner=miner, distance=distance,
                             sampler=sampler,
                             judgments=None if listeners is None else listeners.source)

    config, done, run_dir = _start_or_resume(TABLE1, resume, new_config)
    networks = [m for m in config["models"] if takes_device(m)]
    _set_device(config, resume, device, lambda: [
        config["model_params"].setdefault(m, {}) for m in networks
        if device != "cpu" or m in config["model_params"]])
    if resume is not None and config.get("judgments"):
        listeners = load_judgments(config["judgments"])
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
        run_dir = TABLE1.start(config, f"table1-{sets[0].collection.name}-{config['protocol']}",
                               runs)
    with progress_bar() as progress:
        task = progress.add_task("table 1", total=len(config["models"]) * len(sets))
        table = run_table1(sets, config["models"], config["protocol"], config["folds"],
                           config["seed"], config["model_params"],
                           on_cell=lambda m, f, c: progress.advance(task), n_jobs=jobs,
                           done=done, on_table=lambda t: TABLE1.save(run_dir, t),
                           judgments=listeners)
    _finish(TABLE1, run_dir, table, table1_markdown(table, metric_list), as_json)


@reproduce_app.command("metric-vs-classification")
@fail_cleanly
def reproduce_metric_vs_classification(
    data: str = typer.Option("cyberlioz-extended", help="Data set."),
    feature: str = typer.Option("mfcc", help="Input feature."),
    rows: Optional[str] = typer.Option(None, help="Comma-separated rows (default: triplet, "
                                                  "proxy-nca, proxy-anchor, "
                                                  "classifier-unnormalised, classifier; also "
                                                  "prototypical, euclidean)."),
    protocol: str = typer.Option("kfold", help="kfold, group-kfold or loo."),
    folds: int = typer.Option(5, help="Number of folds."),
    seed: int = typer.Option(0, help="Seed."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p",
                                              help="ROW:KEY=VALUE override, e.g. "
                                                   "triplet:margin=0.1 or classifier:epochs=20."),
    quick: bool = opt.QuickNetworks,
    sol_root: Optional[Path] = opt.SolRoot,
    workers: int = opt.Workers,
    jobs: int = opt.Jobs,
    threads: Optional[int] = opt.Threads,
    runs: Optional[Path] = opt.Runs,
    resume: Optional[Path] = opt.Resume,
    as_json: bool = opt.TableJson,
) -> None:
    """Lee et al. 2020's comparison: triplet network, proxy losses, classification without
    and with normalisation, on one MLP backbone; R@1, R@2, R@4, R@8, label AUC from class
    centroids and training time (mean ± std over folds).

    The table is saved in the run directory after every row; an interrupted run continues
    with ``--resume RUN_DIR``.
    """
    from mirsim.experiments.metric_vs_classification import (
        METRIC_VS_CLASSIFICATION, metric_vs_classification_config,
        metric_vs_classification_markdown, run_metric_vs_classification)

    set_threads(threads)
    kind = METRIC_VS_CLASSIFICATION
    config, done, run_dir = _start_or_resume(kind, resume, lambda: metric_vs_classification_config(
        data, feature, _names(rows) if rows else None, protocol, folds, seed, param, quick,
        sol_root))
    sol = Path(config["sol_root"]) if config.get("sol_root") else None
    fs = load_features_with_progress(config["data"], config["feature"], {}, workers,
                                     data_options(sol))
    if run_dir is None:
        run_dir = kind.start(config, f"metric-vs-classification-{fs.collection.name}-"
                                     f"{config['feature']}-{config['protocol']}", runs)
    with progress_bar() as progress:
        task = progress.add_task("metric vs classification", total=len(config["rows"]))
        table = run_metric_vs_classification(
            fs, config, n_jobs=jobs, done=done, on_table=lambda t: kind.save(run_dir, t),
            on_cell=lambda r, f, c: progress.advance(task))
    _finish(kind, run_dir, table, metric_vs_classification_markdown(table), as_json)


@reproduce_app.command("new-sounds")
@fail_cleanly
def reproduce_new_sounds(
    data: str = typer.Option("cyberlioz", help="Data set (the 78 real sounds by default)."),
    candidates: Optional[str] = typer.Option(
        None, help="Comma-separated INPUT/MODEL or INPUT/MODEL/SUPERVISION candidates, e.g. "
                   "jtfs/lda,jtfs+musicnn-msd/lmnn,jtfs/lmnn/listeners (supervision: clusters, "
                   "the default, listeners, extended: the clusters and the simulated pitch "
                   "and dynamics variants of the training sounds, or coassociation: the share "
                   "of listeners who grouped each pair, for soft-lda or pair-regression, or "
                   "soft-labels: that share and the clusters, half and half, or augmented: "
                   "the clusters and 8 audio-augmented copies of each training sound; an input's "
                   "parameters in brackets, e.g. jtfs+musicnn-msd[layer=pooled]/lda; "
                   "default: mfcc, jtfs, musicnn-msd, musicnn-msd[layer=pooled] and the "
                   "concatenations of jtfs with both, each with euclidean, lda, nca, lmnn, "
                   "mlp, an-gnn from the clusters, and the models of the other supervisions "
                   "the data and judgments allow)."),
    protocol: str = typer.Option("group-kfold", help="group-kfold (new sounds), loo or kfold."),
    folds: int = typer.Option(5, help="Number of folds."),
    seed: int = typer.Option(0, help="Seed."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p",
                                              help="CANDIDATE:KEY=VALUE override, e.g. "
                                                   "jtfs/lda:shrinkage=0.5."),
    judgments: str = typer.Option("cyberlioz", "--judgments",
                                  help="Listener judgments every cell is also scored against "
                                       "(see mirsim train --judgments), or 'none'."),
    quick: bool = opt.QuickNetworks,
    workers: int = opt.Workers,
    jobs: int = opt.Jobs,
    threads: Optional[int] = opt.Threads,
    runs: Optional[Path] = opt.Runs,
    resume: Optional[Path] = opt.Resume,
    as_json: bool = opt.TableJson,
) -> None:
    """Every candidate metric (input x model) on sounds it never met and against listeners
    it never met: P@1, P@5, MAP@R, triplet agreement, beside the human reference; and
    whether the best learned metric meets the generalisation goal.

    The table is saved in the run directory after every cell; an interrupted run continues
    with ``--resume RUN_DIR``.
    """
    from mirsim.artefacts.runs import runs_root
    from mirsim.experiments.judgments import load_judgments
    from mirsim.experiments.new_sounds import (AUGMENTATION, NEW_SOUNDS, new_sounds_config,
                                               new_sounds_markdown, run_new_sounds)

    runs_root(runs)  # an unwritable --runs is refused before any work
    set_threads(threads)
    use = None if judgments.strip().lower() == "none" else judgments
    kind = NEW_SOUNDS
    config, done, run_dir = _start_or_resume(kind, resume, lambda: new_sounds_config(
        data, None if candidates is None else _names(candidates), protocol, folds, seed, param,
        use, quick))
    listeners = load_judgments(config["judgments"]) if config.get("judgments") else None
    if resume is None and listeners is not None:
        config["judgments"] = str(listeners.source)  # the file found, as run
    sets = {f: load_features_with_progress(config["data"], f, {}, workers, data_options(None))
            for f in config["inputs"]}
    variant_sets = {f: load_features_with_progress(config["variant_data"], f, {}, workers,
                                                   data_options(None))
                    for f in config.get("variant_inputs") or []}
    augmented_sets = {f: load_features_with_progress(
        config["data"], f, {}, workers, data_options(None), model=AUGMENTATION["model"],
        model_params={"n_views": AUGMENTATION["n_views"]})
        for f in config.get("augmented_inputs") or []}
    if run_dir is None:
        first = next(iter(sets.values()))
        run_dir = kind.start(config, f"new-sounds-{first.collection.name}-{config['protocol']}",
                             runs)
    with progress_bar() as progress:
        task = progress.add_task("new sounds", total=len(config["candidates"]))
        table = run_new_sounds(sets, config, n_jobs=jobs, judgments=listeners,
                               variant_sets=variant_sets, augmented_sets=augmented_sets,
                               done=done,
                               on_table=lambda t: kind.save(run_dir, t),
                               on_cell=lambda r, f, c: progress.advance(task))
    _finish(kind, run_dir, table, new_sounds_markdown(table), as_json)


@reproduce_app.command("multidim")
@fail_cleanly
def reproduce_multidim(
    data: str = typer.Option("grooves", help="grooves, soundtracks, cyberlioz or "
                                             "cyberlioz-extended."),
    songs: int = typer.Option(120, min=2, help="grooves songs; soundtracks: pieces per "
                                               "soundtrack, at most."),
    segments: int = typer.Option(3, min=1, help="3 s segments per song or piece (50 % "
                                                "overlap); all of a song's in one fold."),
    epochs: int = typer.Option(10, min=1, help="Epochs of each conditional network."),
    lr: float = typer.Option(1e-3, help="Adam learning rate of the conditional networks "
                                        "(the papers': 1e-5 over far longer training)."),
    folds: int = typer.Option(5, help="Folds of group-kfold (held-out songs or sounds)."),
    seed: int = typer.Option(0, help="Seed."),
    rows: Optional[str] = typer.Option(None, help="Comma-separated rows (default: baseline, "
                                                  "the proposed network single and multi-"
                                                  "input with 4 and with all dimensions, "
                                                  "musicnn-msd, openl3)."),
    judgments: Optional[str] = typer.Option(None, help="Judged triplets scored in every "
                                                       "sub-space: a file, 'cyberlioz' (the "
                                                       "default on the Cyberlioz sets) or "
                                                       "'none'."),
    quick: bool = typer.Option(False, "--quick", help="grooves: 16 songs of 3.5 s (in their "
                                                      "own cache folder); 1 epoch, 2 folds: "
                                                      "checks that the command runs (not a "
                                                      "result)."),
    workers: int = opt.Workers,
    jobs: int = opt.Jobs,
    threads: Optional[int] = opt.Threads,
    device: str = opt.Device,
    runs: Optional[Path] = opt.Runs,
    resume: Optional[Path] = opt.Resume,
    as_json: bool = opt.TableJson,
) -> None:
    """Multi-dimensional similarity: triplet prediction of held-out items per dimension
    (grooves: genre, instrument, tempo, key; soundtracks: soundtrack, estimated tempo and
    key; Cyberlioz: cluster, family, instrument,
    technique, and pitch and dynamics on the extended set) of the baseline and proposed
    conditional networks and of pretrained embeddings (Table 1), every combination of
    sub-spaces (Table 2), with judgments which sub-space predicts the listeners best, and a
    radar plot (multidim.png).

    The table is saved in the run directory after every row; an interrupted run continues
    with ``--resume RUN_DIR``.
    """
    from mirsim.artefacts.runs import runs_root
    from mirsim.config import data_cache_dir
    from mirsim.experiments.judgments import load_judgments
    from mirsim.experiments.multidim import (MULTIDIM, QUICK, ROWS, multidim_config,
                                             multidim_markdown, multidim_radar, row_features,
                                             run_multidim)

    runs_root(runs)  # an unwritable --runs is refused before any work
    set_threads(threads)
    kind = MULTIDIM
    networks = lambda c: [c["model_params"][r] for r in c["rows"]  # noqa: E731
                          if takes_device(ROWS[r].model)]
    settings = {"songs": songs, "epochs": epochs, "folds": folds, "segments": segments}
    if quick:
        settings = {**settings, **QUICK}
        if data == "grooves":
            settings["root"] = str(data_cache_dir("grooves-quick"))
    config, done, run_dir = _start_or_resume(kind, resume, lambda: multidim_config(
        seed=seed, rows=_names(rows) if rows else None, lr=lr, data=data,
        judgments=judgments, **settings))
    _set_device(config, resume, device, lambda: networks(config))
    judged = None if config.get("judgments") is None else load_judgments(config["judgments"])
    sets: dict = {}

    def load(row: str):  # rows reading the same feature share it
        key = json.dumps(row_features(row), sort_keys=True)
        if key not in sets:
            sets[key] = load_features_with_progress(config["data"], *row_features(row),
                                                    workers, config["data_params"])
        return sets[key]

    if run_dir is None:
        size = config["data_params"].get("songs")
        run_dir = kind.start(config, f"multidim-{config['data']}"
                                     + (f"-{size}" if size else ""), runs)
    with progress_bar() as progress:
        task = progress.add_task("multidim", total=len(config["rows"]))
        table = run_multidim(load, config, n_jobs=jobs, done=done,
                             on_table=lambda t: kind.save(run_dir, t),
                             on_cell=lambda r, f, c: progress.advance(task),
                             judgments=judged)
    multidim_radar(table, Path(run_dir) / "multidim.png")
    _finish(kind, run_dir, table, multidim_markdown(table), as_json)


def _set_device(config: dict, resume: Optional[Path], device: str,
               networks: Callable[[], list[dict]]) -> None:
    """``--device`` into the parameters of the networks of a configuration (``networks()``:
    their parameter dicts): of a new run (``resume`` None), or of a resumed one when
    ``--device`` is given (where it trains is not part of the result)."""
    from mirsim.training.devices import resolve_device

    resolve_device(device)
    if device == "cpu" and resume is not None:
        return  # the default: the run keeps the device it was started with
    for params in networks():
        if device == "cpu":
            params.pop("device", None)
        else:
            params["device"] = device


def _names(text: str) -> list[str]:
    """``"a, b[k=1,j=2],"`` -> ``["a", "b[k=1,j=2]"]`` (commas in brackets are a name's)."""
    from mirsim.experiments.specs import split_outside_brackets

    return [n.strip() for n in split_outside_brackets(text) if n.strip()]


def _start_or_resume(kind, resume: Optional[Path], new_config: Callable[[], dict]):
    """``(config, finished cells, run directory)``: of the run to continue (``--resume``), or
    a new, checked configuration (no run directory yet: it is made once the data loads)."""
    if resume is None:
        return new_config(), {}, None
    config, done = kind.load_unfinished(resume)
    err.print(f"continuing {resume}: {sum(map(len, done.values()))} finished cell(s) kept",
              highlight=False)
    return config, done, resume


def _finish(kind, run_dir: Path, table: dict, markdown: str, as_json: bool) -> None:
    """Write the finished table (JSON and Markdown) and print it, or its JSON (``--json``)."""
    kind.finish(run_dir, table, markdown)
    if as_json:
        err.print(f"run directory: {run_dir}", highlight=False)
        print(json.dumps({**table, "run_dir": str(run_dir)}))
    else:
        out.print(markdown, highlight=False, soft_wrap=True)
        out.print(f"run directory: {run_dir}", highlight=False)


@reproduce_app.command("linear-methods")
@fail_cleanly
def reproduce_linear_methods(
    data: str = typer.Option("synth", help="Data set (synth, cyberlioz-extended, a folder "
                                           "or a manifest)."),
    feature: str = typer.Option("mfcc", help="Input feature."),
    protocol: str = typer.Option("kfold", help="kfold or group-kfold."),
    folds: int = typer.Option(5, help="Number of folds."),
    seed: int = typer.Option(0, help="Seed of the folds, the models and the UMAP maps."),
    methods: str = typer.Option("euclidean,lda,nca,lmnn",
                                help="Comma-separated models compared."),
    quick: bool = typer.Option(False, "--quick", help="A stratified sample of 48 items and "
                                                      "short training (for tests)."),
    sol_root: Optional[Path] = opt.SolRoot,
    workers: int = opt.Workers,
    runs: Optional[Path] = opt.Runs,
    as_json: bool = typer.Option(False, "--json", help="Last stdout line: the metrics as "
                                                       "JSON."),
) -> None:
    """The ISMIR 2020 metric-learning tutorial's first demo: standardise, then 1-nearest-
    neighbour classification with Euclidean distance vs LDA, NCA and LMNN.

    Writes a run directory with each method's cross-validated 1-NN accuracy, P@1 and MAP@R,
    classification reports and confusion matrices, UMAP maps of the last fold's held-out
    embeddings and the learned projection matrices; `mirsim report RUN_DIR` draws them.
    """
    from mirsim.errors import MirsimError
    from mirsim.experiments.linear_methods import check_protocol, reproduce_linear_methods as run
    from mirsim.models import model_class

    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    if not method_list:
        raise MirsimError("--methods names no model")
    for m in method_list:
        model_class(m)  # unknown model or protocol: fail before any work
    check_protocol(protocol, folds, seed)
    fs = load_features_with_progress(data, feature, {}, workers, data_options(sol_root))
    with progress_bar() as progress:
        task = progress.add_task("methods", total=len(method_list) * folds)

        def on_fold(method: str, done: int, total: int) -> None:
            progress.update(task, description=f"{method} fold {done}/{total}")
            progress.advance(task)

        result = run(fs, data, method_list, protocol, folds, seed, quick, runs, on_fold)
    if as_json:
        from mirsim.artefacts.files import read_json_object

        err.print(f"run directory: {result.run_dir}", highlight=False)
        metrics = read_json_object(result.run_dir / "metrics.json", MirsimError)
        print(json.dumps({"metrics": metrics, "run_dir": str(result.run_dir)}))
    else:
        out.print(result.markdown, highlight=False, soft_wrap=True)
        out.print(f"run directory: {result.run_dir}  (mirsim report RUN_DIR draws it)",
                  highlight=False)


@reproduce_app.command("per-instrument")
@fail_cleanly
def reproduce_per_instrument(
    data: Optional[str] = typer.Option(None, help="multitrack (a Slakh2100-layout folder: "
                                                  "the songs `mirsim data build multitrack` "
                                                  "renders, or --slakh-root; the default), "
                                                  "synthetic (songs of tones and noise, made "
                                                  "here; the default of --quick) or "
                                                  "soundtracks (the recorded game music of "
                                                  "Debian packages: --songs pieces, the "
                                                  "games' in turn; mix and separated-* "
                                                  "conditions only)."),
    slakh_root: Optional[Path] = typer.Option(None, help="A Slakh2100-layout folder (a real "
                                                         "Slakh2100 or babyslakh; default: "
                                                         "where `mirsim data build "
                                                         "multitrack` writes)."),
    conditions: str = typer.Option(",".join(("mix", "drums", "bass", "piano", "guitar",
                                             "separated-drums", "separated-bass",
                                             "separated-piano")),
                                   help="Comma-separated conditions (rows)."),
    trials: int = typer.Option(1, help="Trials (seeds seed, seed+1, ...) per condition "
                                       "(the paper's: 5, --paper)."),
    epochs: int = typer.Option(2, help="Training epochs of each metric (the paper's: 150, "
                                       "--paper)."),
    songs: int = typer.Option(199, help="Songs (--data multitrack: the first ones with every "
                                        "instrument; the paper's 199)."),
    test_songs: int = typer.Option(19, help="Of them, held out for testing (the paper's 19)."),
    seconds: float = typer.Option(60.0, help="Length of a song (synthetic), or the seconds "
                                             "of it read (multitrack: 39 training segments; "
                                             "the paper's 40 need 61.5 s, --paper)."),
    separator: str = typer.Option("hpss", help="Separator of the separated conditions: hpss, "
                                               "openunmix (trained here on the training "
                                               "songs' stems), or umxhq, umxl, htdemucs "
                                               "(published weights, when present)."),
    separator_param: Optional[list[str]] = typer.Option(
        None, "--separator-param", help="KEY=VALUE of the separator, e.g. epochs=30 "
                                        "(openunmix)."),
    seed: int = typer.Option(0, help="Seed."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p",
                                              help="KEY=VALUE of the segment CNN, e.g. lr=0.01."),
    quick: bool = typer.Option(False, "--quick", help="8 songs of 8 s, 2 epochs, 1 trial, a "
                                                      "small network: checks that it runs."),
    paper: bool = typer.Option(False, "--paper", help="The paper's size: 150 epochs, 5 trials, "
                                                      "61.5 s a song (40 training segments); "
                                                      "hundreds of CPU hours (see the README)."),
    device: str = opt.Device,
    runs: Optional[Path] = opt.Runs,
    resume: Optional[Path] = opt.Resume,
    as_json: bool = opt.TableJson,
) -> None:
    """Hashizume et al.: a metric per instrument, track identification (Table II), SDR/SIR/SAR
    of the separated stems (Table I) and the correlations of the song distances (Table III).

    Saved after every condition and trial; an interrupted run continues with --resume RUN_DIR.
    The first trial's model of every condition is kept in RUN_DIR/model/ (`mirsim index build
    DIR --run RUN_DIR` searches songs by instrument with them).
    """
    from mirsim.errors import MirsimError
    from mirsim.experiments.per_instrument import (PAPER_SECONDS, PER_INSTRUMENT,
                                                   per_instrument_markdown, run_per_instrument)
    from mirsim.experiments.specs import model_params, params_config
    from mirsim.models.per_instrument import PerInstrumentModel

    if quick and paper:
        raise MirsimError("--quick and --paper are two sizes: give one")

    def new_config() -> dict:
        pairs = list(param or [])
        size = {"songs": songs, "test_songs": test_songs, "seconds": seconds}
        n_trials = trials
        sep_pairs = list(separator_param or [])
        if quick:
            size, n_trials = {"songs": 8, "test_songs": 4, "seconds": 8.0}, 1
            pairs = ["epochs=2", "channels=8,16", "n_mels=32", *pairs]
            if separator == "openunmix":
                sep_pairs = ["epochs=2", "hidden_size=32", "nb_layers=1", "seconds_per_song=8",
                             *sep_pairs]
        elif paper:
            size, n_trials = {**size, "seconds": PAPER_SECONDS}, 5
            pairs = ["epochs=150", *pairs]
        else:
            pairs = [f"epochs={epochs}", *pairs]
        return PER_INSTRUMENT.config(
            data=data or ("synthetic" if quick else "multitrack"),
            slakh_root=str(slakh_root) if slakh_root else None, data_params=size,
            conditions=_names(conditions), trials=n_trials, seed=seed, separator=separator,
            separator_params=_separator_params(separator, sep_pairs, seed),
            model_params=params_config(model_params("segment-cnn", pairs)))

    config, done, run_dir = _start_or_resume(PER_INSTRUMENT, resume, new_config)
    _set_device(config, resume, device, lambda: [config["model_params"]])
    segments, separation, sr, fitted = _per_instrument_segments(config, run_dir)
    if run_dir is None:
        run_dir = PER_INSTRUMENT.start(config, f"per-instrument-{config['data']}", runs)
    from mirsim.separation.separators import SEPARATOR_DIR

    if fitted is not None and not (run_dir / SEPARATOR_DIR / "config.json").is_file():
        fitted.save(run_dir / SEPARATOR_DIR)  # --resume and index builds separate with it
    with progress_bar() as progress:
        task = progress.add_task("per-instrument", total=len(segments) * config["trials"])
        table = run_per_instrument(
            segments, config["trials"], config["seed"], config["model_params"],
            data=config["data"], done=done, on_table=lambda t: PER_INSTRUMENT.save(run_dir, t),
            on_cell=lambda c, t, cell: progress.advance(task),
            on_model=lambda c, model: PerInstrumentModel.save_condition(
                run_dir / "model", c, model))
    table["separation"] = separation
    if separation:
        table["separator"] = config["separator"]
    _per_instrument_figures(table, run_dir)
    markdown = per_instrument_markdown(table)
    _finish(PER_INSTRUMENT, run_dir, table, markdown, as_json)


def _separator_params(name: str, pairs: list[str], seed: int) -> dict:
    """The typed parameters of separator ``name`` (``KEY=VALUE`` pairs); a trainable one
    is seeded with the run's seed unless told otherwise."""
    from mirsim.experiments.specs import parse_params
    from mirsim.registry import class_params
    from mirsim.separation.separators import separator_class

    cls = separator_class(name)
    paths = {"weights_dir", "base_url"} & set(class_params(cls))  # strings as given
    split = [(p.partition("=")[0].strip(), p) for p in pairs]
    params = parse_params([p for k, p in split if k not in paths], cls, f"separator {name}")
    params.update({k: p.partition("=")[2].strip() for k, p in split if k in paths})
    if getattr(cls, "trainable", False):
        params = {"seed": seed, **params}
    return params


def _per_instrument_separator(config: dict, run_dir: Optional[Path]):
    """The configuration's separator: the one fitted and saved in ``run_dir`` (--resume),
    else a new one."""
    from mirsim.separation.separators import SEPARATOR_DIR, make_separator, run_separator

    if run_dir is not None and (run_dir / SEPARATOR_DIR / "config.json").is_file():
        err.print(f"separating with the separator saved in {run_dir / SEPARATOR_DIR}",
                  highlight=False)
        return run_separator(run_dir, config["separator"])
    return make_separator(config["separator"], **config.get("separator_params", {}))


def _per_instrument_segments(config: dict, run_dir: Optional[Path] = None):
    """The segments of every condition, Table I and the fitted separator (``None`` when
    there is none to keep) of a per-instrument configuration."""
    from mirsim.datasets.synthetic_multitrack import synthetic_multitrack
    from mirsim.errors import MirsimError
    from mirsim.experiments.per_instrument import (condition_audio, condition_segments,
                                                   separate_songs, separation_table,
                                                   training_songs)
    from mirsim.models.per_instrument import CONDITIONS

    wrong = [c for c in config["conditions"] if c not in CONDITIONS]
    if wrong:
        raise MirsimError(f"unknown condition {wrong[0]!r} (valid: {', '.join(CONDITIONS)})")
    if config["data"] not in ("synthetic", "multitrack", "soundtracks"):
        raise MirsimError(f"--data {config['data']}: valid are synthetic, multitrack and "
                          f"soundtracks")
    size, sr = config["data_params"], 22050
    if not 0 < size["test_songs"] < size["songs"]:
        raise MirsimError("--test-songs must be at least 1 and fewer than --songs")
    if config["data"] == "multitrack":
        names, stems = _slakh_stems(config, sr)
    elif config["data"] == "soundtracks":
        names, stems = _soundtrack_mixes(config, sr)
    else:
        stems = synthetic_multitrack(size["songs"], size["seconds"], sr, config["seed"])
        names = [f"song{i:03d}" for i in range(len(stems))]
    train = training_songs(len(stems), size["test_songs"], config["seed"])
    n_mels = config["model_params"].get("n_mels", 128)
    separated = any(c.startswith("separated-") for c in config["conditions"])
    separator = _per_instrument_separator(config, run_dir) if separated else None
    if separated:
        with progress_bar() as progress:
            progress.add_task(f"separating ({config['separator']})", total=None)
            stems = separate_songs(stems, sr, separator, train=train)
    segments = {c: condition_segments(names, condition_audio(stems, c), sr, train, n_mels=n_mels)
                for c in config["conditions"]}
    has_stems = all(i in stems[0] for i in ("drums", "bass", "piano"))  # not recordings
    separation = (separation_table(stems, [not t for t in train]) if separated and has_stems
                  else {})
    fitted = separator if getattr(separator, "trainable", False) else None
    return segments, separation, sr, fitted


def _soundtrack_mixes(config: dict, sr: int):
    """The pieces (names, ``{"mix"}`` each) of the recorded soundtracks: the first ``songs``
    of them, the games' in turn, their first ``seconds``. Recordings have no stems: an
    instrument condition is refused."""
    from mirsim.audio import load_audio
    from mirsim.datasets.soundtracks import interleaved_pieces, soundtrack_items
    from mirsim.errors import MirsimError
    from mirsim.models.per_instrument import INSTRUMENTS

    stemmed = [c for c in config["conditions"] if c in INSTRUMENTS]
    if stemmed:
        raise MirsimError(f"--data soundtracks: condition {stemmed[0]!r} needs the original "
                          f"stems, which recorded music does not have (valid: mix, "
                          f"separated-drums, separated-bass, separated-piano)")
    size = config["data_params"]
    items = soundtrack_items()
    if size["songs"] > len(items):
        raise MirsimError(f"--data soundtracks: {len(items)} pieces, --songs {size['songs']} "
                          f"asked for (e.g. --songs {len(items)} --test-songs 19)")
    pieces = interleaved_pieces(items, size["songs"])
    mixes = [{"mix": load_audio(p, sr=sr, duration=size["seconds"])} for p in pieces["path"]]
    return pieces["id"].tolist(), mixes


def _slakh_stems(config: dict, sr: int):
    """The songs (names, stems) of a Slakh2100-layout folder (``--slakh-root``, else the
    folder ``mirsim data build multitrack`` writes) that have every instrument: the first
    ``songs`` of them, their first ``seconds``."""
    from mirsim.config import data_cache_dir
    from mirsim.datasets.slakh import slakh_songs
    from mirsim.errors import MirsimError
    from mirsim.models.per_instrument import INSTRUMENTS

    size = config["data_params"]
    root = config.get("slakh_root") or data_cache_dir("multitrack")
    tracks, stems = slakh_songs(root, INSTRUMENTS, sr, size["seconds"], limit=size["songs"])
    if len(tracks) < size["songs"]:
        raise MirsimError(f"{root}: {len(tracks)} songs with every instrument, "
                          f"--songs {size['songs']} asked for")
    return [t.id for t in tracks], stems


def _per_instrument_figures(table: dict, run_dir: Path) -> None:
    """Fig. 4: a heatmap of each condition's trial-mean song distances (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = list(table["cells"].items())
    fig, axes = plt.subplots(1, len(rows), figsize=(3 * len(rows), 3), squeeze=False)
    for ax, (condition, cells) in zip(axes[0], rows):
        D = np.mean([cell["song_distances"] for cell in cells.values()], axis=0)
        ax.imshow(D, cmap="viridis")
        ax.set_title(condition, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(Path(run_dir) / "song_distances.png", dpi=80)
    plt.close(fig)
    _per_instrument_tsne(table, run_dir)


def _per_instrument_tsne(table: dict, run_dir: Path) -> None:
    """Fig. 3: t-SNE maps of the first trial's test segments, one per condition, coloured
    by song (tsne.png)."""
    import matplotlib.pyplot as plt
    import numpy as np

    maps = [(c, cells["trial-0"]) for c, cells in table["cells"].items()
            if "tsne" in cells.get("trial-0", {})]
    if not maps:
        return
    fig, axes = plt.subplots(1, len(maps), figsize=(3 * len(maps), 3), squeeze=False)
    for ax, (condition, cell) in zip(axes[0], maps):
        xy = np.asarray(cell["tsne"])
        _, song = np.unique(cell["segment_songs"], return_inverse=True)
        ax.scatter(xy[:, 0], xy[:, 1], c=song, cmap="tab20", s=6)
        ax.set_title(condition, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(Path(run_dir) / "tsne.png", dpi=80)
    plt.close(fig)
