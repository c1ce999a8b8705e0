"""``mirsim demo``: learn a similarity metric end to end and compare it with Euclidean."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mirsim.cli import options as opt
from mirsim.cli.train import DEFAULT_FEATURE
from mirsim.cli.common import (fail_cleanly, human_reference_row, load_features_with_progress,
                               metrics_table, out, progress_bar)


@fail_cleanly
def demo(
    data: str = typer.Option("auto", help="auto: the 78 real Cyberlioz sounds if found, else "
                                          "the offline synth library."),
    feature: str = typer.Option(DEFAULT_FEATURE, help="Input feature (mirsim train's default)."),
    models: str = typer.Option(",".join(("euclidean", "lda", "mlp", "an-gnn")),
                               help="Comma-separated models to compare."),
    folds: int = typer.Option(5, help="Number of folds."),
    seed: int = typer.Option(0, help="Seed."),
    workers: int = opt.Workers,
    jobs: int = opt.Jobs,
    runs: Optional[Path] = opt.Runs,
) -> None:
    """Learn a similarity metric end to end and compare it with the Euclidean baseline, on
    sounds the metric never met (group-kfold), and, on Cyberlioz, against the listeners."""
    from mirsim.artefacts.runs import runs_root
    from mirsim.datasets.locations import find_cyberlioz
    from mirsim.evaluation.protocols import make_protocol
    from mirsim.experiments.demo import DEMO_PROTOCOL, run_demo
    from mirsim.experiments.judgments import judgments_for, load_judgments
    from mirsim.models import model_class

    runs_root(runs)  # an unwritable --runs is refused before any work
    if data == "auto":
        if find_cyberlioz() is not None:
            data = "cyberlioz"
        else:
            data = "synth"
            out.print("Cyberlioz data not found (set MIRSIM_CYBERLIOZ_DIR or run `mirsim data "
                      "fetch cyberlioz`): using the offline synth library instead.")
    model_list = [m.strip() for m in models.split(",") if m.strip()]
    for m in model_list:
        model_class(m)  # unknown model: fail before any work
    make_protocol(DEMO_PROTOCOL, folds, seed)
    fs = load_features_with_progress(data, feature, {}, workers, {})
    listeners = (judgments_for(fs, load_judgments("cyberlioz"))
                 if fs.collection.name == "cyberlioz" else None)
    out.print(f"{fs.collection.description}")
    with progress_bar() as progress:
        task = progress.add_task("models", total=len(model_list))

        def next_model(name: str) -> None:
            progress.update(task, description=f"{name} {DEMO_PROTOCOL}",
                            completed=model_list.index(name))

        result = run_demo(fs, model_list, folds, seed, jobs, runs, data, on_model=next_model,
                          judgments=listeners)
    rows = [(r.model, r.to_json()) for r in result.results]
    groups = "IMTs" if "cyberlioz" in fs.collection.name else "instruments"
    out.print(metrics_table(f"{fs.collection.name} · {feature} · {DEMO_PROTOCOL} ({folds} "
                            f"folds): every test fold holds {groups} never seen in training",
                            rows, reference=human_reference_row(rows[0][1])))
    if listeners is not None:
        out.print("agree: share of each listener's own triplets (A with B, C apart) that the "
                  "metric orders as they did, for held-out sounds A.", highlight=False)
    out.print(f"run directory: {result.run_dir}  (model: {result.saved_model}, the best MAP@R, "
              f"fitted on all {len(fs.X)} items)", highlight=False)
