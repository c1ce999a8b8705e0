"""``mirsim demo``: learn a similarity metric end to end and compare it with Euclidean."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mirsim.cli import options as opt
from mirsim.cli.common import fail_cleanly, load_features_with_progress, metrics_table, out, progress_bar


@fail_cleanly
def demo(
    data: str = typer.Option("auto", help="auto: Cyberlioz (simulated extended set) if found, "
                                          "else the offline synth library."),
    feature: str = typer.Option("mfcc", help="Input feature."),
    models: str = typer.Option("euclidean,linear,mlp,an-gnn",
                               help="Comma-separated models to compare."),
    folds: int = typer.Option(5, help="Number of folds."),
    seed: int = typer.Option(0, help="Seed."),
    workers: int = opt.Workers,
    jobs: int = opt.Jobs,
    runs: Optional[Path] = opt.Runs,
) -> None:
    """Learn a similarity metric end to end and compare it with the Euclidean baseline."""
    from mirsim.datasets.locations import find_cyberlioz
    from mirsim.evaluation.protocols import make_protocol
    from mirsim.experiments.demo import run_demo
    from mirsim.models import model_class

    from mirsim.artefacts.runs import runs_root

    runs_root(runs)  # an unwritable --runs is refused before any work
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
    make_protocol("kfold", folds, seed)
    fs = load_features_with_progress(data, feature, {}, workers, {})
    out.print(f"{fs.collection.description}")
    with progress_bar() as progress:
        task = progress.add_task("models", total=len(model_list))

        def next_model(name: str) -> None:
            progress.update(task, description=f"{name} kfold",
                            completed=model_list.index(name))

        result = run_demo(fs, model_list, folds, seed, jobs, runs, data, on_model=next_model)
    out.print(metrics_table(f"{fs.collection.name} · {feature} · kfold ({folds} folds), "
                            f"queries and retrievals inside each test fold",
                            [(r.model, r.to_json()) for r in result.results]))
    out.print(f"ii-P@5 ignores retrieved items of the query's own group "
              f"({'IMT' if 'cyberlioz' in fs.collection.name else 'instrument'}).")
    out.print(f"run directory: {result.run_dir}  (model: {result.saved_model}, the best MAP@R, "
              f"fitted on all {len(fs.X)} items)", highlight=False)
