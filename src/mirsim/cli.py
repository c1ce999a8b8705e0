"""The ``mirsim`` command line.

Long work shows progress bars on stderr; with ``--json`` the last line of stdout is one JSON
object. Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

import mirsim
from mirsim.cli_common import err, fail_cleanly, out, progress_bar
from mirsim.errors import MirsimError, UnknownNameError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Learn how people hear similarity between sounds, and search with it.")
data_app = typer.Typer(no_args_is_help=True, help="Data sets: fetch and inspect.")
reproduce_app = typer.Typer(no_args_is_help=True, help="Reproduce the tables of the papers.")
app.add_typer(data_app, name="data")
app.add_typer(reproduce_app, name="reproduce")
from mirsim.cli_index import index_app, query  # noqa: E402  (the index commands' own module)

app.add_typer(index_app, name="index")
app.command()(query)
from mirsim.cli_serve import serve  # noqa: E402

app.command()(serve)
from mirsim.cli_tag import tag  # noqa: E402

app.command()(tag)
from mirsim.cli_report import report  # noqa: E402

app.command()(report)


def _defaults(cls: type) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.default is not p.empty and p.name not in found:
                    found[p.name] = p.default
    return found


def parse_params(pairs: list[str] | None, cls: type, what: str) -> dict[str, Any]:
    """``["lr=0.01", "hidden=128,256"]`` -> typed keyword arguments of ``cls``.

    Examples
    --------
    >>> from mirsim.models import MLPModel
    >>> parse_params(["lr=0.01", "hidden=128,256", "epochs=3"], MLPModel, "model")
    {'lr': 0.01, 'hidden': (128, 256), 'epochs': 3}
    """
    defaults = _defaults(cls)
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in defaults:
            raise MirsimError(f"{what} parameter '{pair}' not understood (use KEY=VALUE with KEY "
                              f"one of: {', '.join(sorted(defaults))})")
        params[key] = _coerce(raw.strip(), defaults[key], key)
    return params


def _coerce(raw: str, default: Any, key: str) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError
            return raw.lower() in {"true", "1", "yes"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(int(v) for v in raw.split(",") if v.strip())
        if default is None:
            return None if raw.lower() == "none" else json.loads(raw)
    except ValueError:
        raise MirsimError(f"parameter {key}: cannot read '{raw}' as {type(default).__name__}") from None
    return raw


def _set_threads(threads: Optional[int]) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _load_features_with_progress(data: str, feature: str, feature_params: dict, workers: int,
                                 data_options: dict):
    from mirsim.experiments import load_features

    with progress_bar() as progress:
        task = progress.add_task(f"features {feature}", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        fs = load_features(data, feature, feature_params, data_options, n_jobs=workers,
                           progress=update)
    if fs.skipped:
        err.print(f"[yellow]skipped {len(fs.skipped)} item(s)[/yellow] (listed in the run's "
                  f"skipped.json); first: {fs.skipped[0]['source']}: {fs.skipped[0]['reason']}",
                  highlight=False, soft_wrap=True)
    return fs


def _check_protocol(protocol: str) -> None:
    from mirsim.evaluation.protocols import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise UnknownNameError("protocol", protocol, PROTOCOLS)


def _data_options(sol_root: Optional[Path]) -> dict:
    return {"sol_root": sol_root} if sol_root else {}


def _metrics_table(title: str, rows: list[tuple[str, dict]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    for col in ("P@1", "P@5", "ii-P@5", "MAP@R"):
        table.add_column(col, justify="right")
    table.add_column("params", justify="right")
    table.add_column("train s", justify="right")
    for name, j in rows:
        m = j["metrics"]
        cells = [f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" for k in
                 ("p_at_1", "p_at_5", "ii_p_at_5", "map_at_r")]
        table.add_row(name, *cells, f"{j['n_parameters']:,}", f"{j['train_seconds']:.1f}")
    return table


def _write_run(run_dir: Path, config: dict, fs, results: list, model=None,
               held_out_of: Optional[str] = None) -> None:
    """Write a run directory: config, metrics, skipped items, the model if any, and the
    held-out embeddings (``test_embeddings.npz``) of the result of model ``held_out_of``
    (default: the only result), when its protocol kept them."""
    from mirsim.experiments import write_json
    from mirsim.experiments.heldout import held_out_embeddings, save_test_embeddings

    write_json(run_dir / "config.json", config)
    write_json(run_dir / "metrics.json", results[0].to_json() if len(results) == 1
               else {r.model: r.to_json() for r in results})
    write_json(run_dir / "skipped.json", fs.skipped)
    if model is not None:
        model.save(run_dir / "model")
    result = next((r for r in results if r.model == held_out_of), results[0])
    held = held_out_embeddings(result, fs)
    if held is not None:
        save_test_embeddings(run_dir, held)


@app.command()
@fail_cleanly
def info() -> None:
    """List the data sets, features, models and protocols, and where the data is."""
    from mirsim.datasets import available_datasets
    from mirsim.datasets.cyberlioz import find_cyberlioz
    from mirsim.evaluation.protocols import PROTOCOLS
    from mirsim.features import available_features
    from mirsim.models import available_models

    found = find_cyberlioz()
    out.print(f"mirsim {mirsim.__version__}")
    out.print(f"data sets: {', '.join(available_datasets())}, or a folder / CSV manifest")
    out.print(f"cyberlioz: {found if found else 'not found (set MIRSIM_CYBERLIOZ_DIR or run `mirsim data fetch cyberlioz`)'}")
    out.print(f"features:  {', '.join(available_features())}")
    out.print(f"models:    {', '.join(available_models())}")
    out.print(f"protocols: {', '.join(PROTOCOLS)}")


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
              sol_root: Optional[Path] = typer.Option(None, help="SOL library root (extended set).")) -> None:
    """Summarise a data set: items, labels, groups."""
    from mirsim.datasets import load_collection

    c = load_collection(data, **_data_options(sol_root))
    out.print(c.summary())
    out.print(c.description)


@app.command()
@fail_cleanly
def train(
    data: str = typer.Option("cyberlioz-extended", help="Data set name, folder or CSV manifest."),
    feature: str = typer.Option("mfcc", help="Input feature."),
    model: str = typer.Option("an-gnn", help="Metric model."),
    protocol: str = typer.Option("kfold", help="kfold, group-kfold or loo."),
    folds: int = typer.Option(5, help="Number of folds (ignored by loo)."),
    seed: int = typer.Option(0, help="Seed of the split and of the model."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p",
                                              help="Model parameter KEY=VALUE (repeatable), e.g. "
                                                   "-p lr=0.01 -p epochs=20."),
    feature_param: Optional[list[str]] = typer.Option(None, "--feature-param",
                                                      help="Feature parameter KEY=VALUE."),
    sol_root: Optional[Path] = typer.Option(None, help="SOL library root (extended set)."),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), help="Processes for feature extraction."),
    jobs: int = typer.Option(min(2, os.cpu_count() or 1), help="Folds trained at once (one "
                                                                "process and torch thread each)."),
    threads: Optional[int] = typer.Option(None, help="Torch threads for training."),
    save_model: bool = typer.Option(True, help="Also fit on all items and save the model."),
    runs: Optional[Path] = typer.Option(None, help="Where to create the run directory."),
    as_json: bool = typer.Option(False, "--json", help="Last stdout line: the result as JSON."),
) -> None:
    """Run one experiment: cross-validated retrieval metrics of one model on one feature."""
    from mirsim.experiments import create_run_dir, run_experiment
    from mirsim.experiments.experiment import fit_final_model
    from mirsim.features import extractor_class
    from mirsim.models import model_class

    _set_threads(threads)
    _check_protocol(protocol)
    params = parse_params(param, model_class(model), "model")
    fparams = parse_params(feature_param, extractor_class(feature), "feature")
    fs = _load_features_with_progress(data, feature, fparams, workers, _data_options(sol_root))
    with progress_bar() as progress:
        task = progress.add_task(f"{model} {protocol}", total=None)
        result = run_experiment(fs, model, protocol, folds, seed, params,
                                on_fold=lambda i, n: progress.update(task, completed=i, total=n),
                                n_jobs=jobs)
    final = fit_final_model(fs, model, seed, params) if save_model else None
    run_dir = create_run_dir(f"{fs.collection.name}-{feature}-{model}-{protocol}", runs)
    config = {"command": "train", "data": data, "feature": feature, "feature_params": fparams,
              "feature_identity": fs.feature_identity, "model": model,
              "model_params": result.model_params, "protocol": protocol, "folds": folds,
              "seed": seed, "mirsim_version": mirsim.__version__}
    _write_run(run_dir, config, fs, [result], final)
    j = result.to_json()
    if not as_json:
        out.print(fs.collection.description)
        out.print(_metrics_table(f"{fs.collection.name} · {feature} · {protocol}", [(model, j)]))
    out.print(f"run directory: {run_dir}", highlight=False) if not as_json else err.print(
        f"run directory: {run_dir}", highlight=False)
    if as_json:
        j["run_dir"] = str(run_dir)
        print(json.dumps(j))


@reproduce_app.command("table1")
@fail_cleanly
def reproduce_table1(
    data: str = typer.Option("cyberlioz-extended", help="Data set."),
    features: str = typer.Option("mfcc,scat1d,jtfs,musicnn-msd",
                                 help="Comma-separated features (columns)."),
    models: str = typer.Option(",".join(("euclidean", "linear", "lmnn", "mlp", "knn-gnn", "an-gnn")),
                               help="Comma-separated models (rows)."),
    protocol: str = typer.Option("kfold", help="kfold (the paper's), group-kfold or loo."),
    folds: int = typer.Option(5, help="Number of folds."),
    seed: int = typer.Option(0, help="Seed."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p",
                                              help="MODEL:KEY=VALUE override, e.g. an-gnn:epochs=20."),
    sol_root: Optional[Path] = typer.Option(None, help="SOL library root (extended set)."),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), help="Processes for feature extraction."),
    jobs: int = typer.Option(min(2, os.cpu_count() or 1), help="Folds trained at once (one "
                                                                "process and torch thread each)."),
    threads: Optional[int] = typer.Option(None, help="Torch threads for training."),
    metrics: str = typer.Option("ii_p_at_5", help="Comma-separated metrics shown in the "
                                                  "Markdown table (p_at_1, p_at_5, ii_p_at_5, "
                                                  "map_at_r); the JSON has all of them."),
    runs: Optional[Path] = typer.Option(None, help="Where to create the run directory."),
    resume: Optional[Path] = typer.Option(None, help="Continue the unfinished run in this run "
                                                     "directory: its saved configuration is "
                                                     "used, its finished cells are kept."),
    as_json: bool = typer.Option(False, "--json", help="Last stdout line: the table as JSON."),
) -> None:
    """The AN-GNN paper's Table 1: ii-P@5 of each model on each feature (mean ± std).

    The table is saved in the run directory after every cell; an interrupted run continues
    with ``--resume RUN_DIR``.
    """
    from mirsim.experiments import create_run_dir, write_json
    from mirsim.experiments.experiment import REPORTED_METRICS
    from mirsim.experiments.runs import write_text_atomic
    from mirsim.experiments.table1 import load_unfinished_table1, run_table1, table1_markdown

    _set_threads(threads)
    metric_list = [m.strip() for m in metrics.split(",") if m.strip()]
    for m in metric_list:
        if m not in REPORTED_METRICS:
            raise UnknownNameError("metric", m, REPORTED_METRICS)
    if resume is not None:
        config, done = load_unfinished_table1(resume)
        run_dir = resume
        err.print(f"continuing {run_dir}: {sum(map(len, done.values()))} finished cell(s) kept",
                  highlight=False)
    else:
        config = _table1_config(data, features, models, protocol, folds, seed, param, sol_root)
        run_dir, done = None, {}
    sol = Path(config["sol_root"]) if config.get("sol_root") else None
    sets = [_load_features_with_progress(config["data"], f, {}, workers, _data_options(sol))
            for f in config["features"]]
    if run_dir is None:
        run_dir = create_run_dir(f"table1-{sets[0].collection.name}-{config['protocol']}", runs)
        write_json(run_dir / "config.json", config)
    with progress_bar() as progress:
        task = progress.add_task("table 1", total=len(config["models"]) * len(sets))
        table = run_table1(sets, config["models"], config["protocol"], config["folds"],
                           config["seed"], config["model_params"],
                           on_cell=lambda m, f, c: progress.advance(task), n_jobs=jobs,
                           done=done, on_table=lambda t: write_json(run_dir / "table1.json", t))
    md = table1_markdown(table, metric_list)
    write_json(run_dir / "table1.json", table)
    write_text_atomic(run_dir / "table1.md", md + "\n")
    if as_json:
        err.print(f"run directory: {run_dir}", highlight=False)
        print(json.dumps({**table, "run_dir": str(run_dir)}))
    else:
        out.print(md, highlight=False, soft_wrap=True)
        out.print(f"run directory: {run_dir}", highlight=False)


def _table1_config(data: str, features: str, models: str, protocol: str, folds: int, seed: int,
                   param: list[str] | None, sol_root: Path | None) -> dict:
    """The checked configuration of a ``reproduce table1`` run (saved as ``config.json``)."""
    from mirsim.features import make_extractor
    from mirsim.models import model_class

    _check_protocol(protocol)
    feature_list = [f.strip() for f in features.split(",") if f.strip()]
    model_list = [m.strip() for m in models.split(",") if m.strip()]
    for f in feature_list:
        make_extractor(f)
    overrides: dict[str, list[str]] = {}
    for p in param or []:
        name, sep, kv = p.partition(":")
        if not sep:
            raise MirsimError(f"--param '{p}': use MODEL:KEY=VALUE")
        overrides.setdefault(name, []).append(kv)
    model_params = {m: parse_params(overrides.get(m), model_class(m), "model") for m in model_list}
    unknown = sorted(set(overrides) - set(model_list))
    if unknown:
        raise MirsimError(f"--param for model(s) not in the table: {', '.join(unknown)}")
    return {"command": "reproduce table1", "data": data, "features": feature_list,
            "models": model_list, "protocol": protocol, "folds": folds, "seed": seed,
            "model_params": model_params,
            "sol_root": None if sol_root is None else str(sol_root),
            "mirsim_version": mirsim.__version__}


DEMO_MODELS = "euclidean,linear,mlp,an-gnn"


@app.command()
@fail_cleanly
def demo(
    data: str = typer.Option("auto", help="auto: Cyberlioz (simulated extended set) if found, "
                                          "else the offline synth library."),
    feature: str = typer.Option("mfcc", help="Input feature."),
    models: str = typer.Option(DEMO_MODELS, help="Comma-separated models to compare."),
    folds: int = typer.Option(5, help="Number of folds."),
    seed: int = typer.Option(0, help="Seed."),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), help="Processes for feature extraction."),
    jobs: int = typer.Option(min(2, os.cpu_count() or 1), help="Folds trained at once (one "
                                                                "process and torch thread each)."),
    runs: Optional[Path] = typer.Option(None, help="Where to create the run directory."),
) -> None:
    """Learn a similarity metric end to end and compare it with the Euclidean baseline."""
    from mirsim.datasets.cyberlioz import find_cyberlioz
    from mirsim.experiments import create_run_dir, run_experiment
    from mirsim.experiments.experiment import fit_final_model
    from mirsim.models import model_class

    if data == "auto":
        if find_cyberlioz() is not None:
            data = "cyberlioz-extended"
        else:
            data = "synth"
            out.print("Cyberlioz data not found (set MIRSIM_CYBERLIOZ_DIR or run `mirsim data "
                      "fetch cyberlioz`): using the offline synth library instead.")
    model_list = [m.strip() for m in models.split(",") if m.strip()]
    for m in model_list:
        model_class(m)  # unknown model: fail before any work
    params: dict[str, dict] = {m: {} for m in model_list}  # the paper's settings
    fs = _load_features_with_progress(data, feature, {}, workers, {})
    out.print(f"{fs.collection.description}")
    results = []
    with progress_bar() as progress:
        task = progress.add_task("models", total=len(model_list))
        for m in model_list:
            progress.update(task, description=f"{m} kfold")
            results.append(run_experiment(fs, m, "kfold", folds, seed, params[m], n_jobs=jobs))
            progress.advance(task)
    # keep the learned model that retrieved best (MAP@R over folds), fitted on every item
    learned_results = [r for r in results if r.model != "euclidean"] or results
    learned = max(learned_results,
                  key=lambda r: r.protocol_result.summary()["map_at_r"]["mean"]).model
    final = fit_final_model(fs, learned, seed, params[learned])
    run_dir = create_run_dir(f"demo-{fs.collection.name}-{feature}", runs)
    config = {"command": "demo", "data": data, "feature": feature, "models": model_list,
              "model_params": params,
              "protocol": "kfold", "folds": folds, "seed": seed, "saved_model": learned,
              "mirsim_version": mirsim.__version__}
    _write_run(run_dir, config, fs, results, final, held_out_of=learned)
    out.print(_metrics_table(f"{fs.collection.name} · {feature} · kfold ({folds} folds), "
                             f"queries and retrievals inside each test fold",
                             [(r.model, r.to_json()) for r in results]))
    out.print(f"ii-P@5 ignores retrieved items of the query's own group "
              f"({'IMT' if 'cyberlioz' in fs.collection.name else 'instrument'}).")
    out.print(f"run directory: {run_dir}  (model: {learned}, the best MAP@R, fitted on all "
              f"{len(fs.X)} items)", highlight=False)


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
