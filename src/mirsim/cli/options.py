"""Options shared by several commands, declared once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

_CORES = min(2, os.cpu_count() or 1)

Param = typer.Option(None, "--param", "-p",
                     help="Model, loss or miner parameter KEY=VALUE (repeatable), e.g. -p lr=0.01 "
                          "-p margin=0.2; loss.KEY / miner.KEY for one component.")
Loss = typer.Option(None, "--loss", help="Training loss (mirsim info lists them), e.g. triplet.")
Miner = typer.Option(None, "--miner", help="Tuple miner of a tuple loss, e.g. semihard.")
Distance = typer.Option(None, "--distance", help="cosine or euclidean (default: the loss's).")
Sampler = typer.Option(None, "--sampler", help="Batch sampler, e.g. m-per-class.")
SolRoot = typer.Option(None, "--sol-root", help="SOL library root (extended set).")
Workers = typer.Option(_CORES, "--workers", min=1, help="Processes for feature extraction.")
Jobs = typer.Option(_CORES, "--jobs", min=1,
                    help="Folds trained at once (one process and torch thread each).")
Threads = typer.Option(None, "--threads", min=1, help="Torch threads for training.")
Runs = typer.Option(None, "--runs", help="Where to create the run directory.")
Device = typer.Option("cpu", "--device", help="Where networks train and embed: cpu, cuda, "
                                              "cuda:N, mps or auto (a CUDA GPU if there is "
                                              "one, else the CPU).")
Json = typer.Option(False, "--json", help="Last stdout line: the result as JSON.")
#: Options of the resumable ``reproduce`` tables.
TableJson = typer.Option(False, "--json", help="Last stdout line: the table as JSON.")
Resume = typer.Option(None, help="Continue the unfinished run in this run directory: its saved "
                                 "configuration is used, its finished cells are kept.")
QuickNetworks = typer.Option(False, "--quick", help="Small networks, 3 epochs: checks that the "
                                                    "command runs (not a result).")
Judgments = typer.Option(None, "--judgments",
                         help="Also score each fold's model against listeners, on held-out "
                              "anchors: a listener-groupings CSV (listener,fname,cluster), a "
                              "triplet CSV (anchor,positive,negative[,weight]), or 'cyberlioz' "
                              "(its listener_clusters.csv). Adds triplet_agreement and "
                              "triplet_agreement_high (mean ± std over listeners) and the human "
                              "reference.")

__all__ = ["Device", "Distance", "Jobs", "Json", "Judgments", "Loss", "Miner", "Optional", "Param", "Path",
           "QuickNetworks", "Resume", "Runs", "Sampler", "SolRoot", "TableJson", "Threads",
           "Workers"]
