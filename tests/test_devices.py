"""``--device``: where networks train and embed. On this CPU-only machine: ``cpu`` gives the
same results as the default, a GPU that is not here is a one-line error, and the option
reaches the model (its saved configuration)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mirsim.cli import app
from mirsim.errors import MirsimError
from mirsim.models import load_model, make_model
from mirsim.training.devices import embedding_device, resolve_device
from synthetic_audio import write_timbre_library

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here")


def _data(n: int = 24, d: int = 8 * 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.standard_normal((n, d)).astype(np.float32) + y[:, None]
    return X, y


#: Every kind of network that trains with torch: a plain one with a loss that has its own
#: parameters (proxies), a graph over the batch, the segment CNN, the conditional network.
TINY = {"mlp": {"epochs": 2, "embedding_dim": 8, "batch_size": 8},
        "an-gnn": {"epochs": 2, "embedding_dim": 8, "batch_size": 12},
        "segment-cnn": {"n_mels": 8, "channels": (4,), "epochs": 2, "batch_size": 8},
        "csn": {"inputs": ("mel", "chroma"), "rows": (8, 4), "map_size": 4, "width": 2,
                "dimension_dim": 4, "epochs": 2}}


@pytest.mark.parametrize("name", list(TINY))
def test_cpu_gives_the_results_of_the_default(name):
    X, y = _data(d=12 * 8)
    default = make_model(name, **TINY[name]).fit(X, y)
    cpu = make_model(name, **TINY[name], device="cpu").fit(X, y)
    assert np.array_equal(default.transform(X), cpu.transform(X))
    assert default.get_params()["device"] == "cpu"


@no_gpu
@pytest.mark.parametrize("name", ["segment-cnn", "csn"])
def test_a_gpu_that_is_not_here_is_one_line(name):
    X, y = _data(d=12 * 8)
    with pytest.raises(MirsimError, match="no CUDA device") as caught:
        make_model(name, **TINY[name], device="cuda").fit(X, y)
    assert "\n" not in str(caught.value)
    with pytest.raises(MirsimError, match="no CUDA device"):
        resolve_device("cuda:1")
    with pytest.raises(MirsimError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(MirsimError, match="cpu, cuda, cuda:N, mps or auto"):
        make_model(name, device="gpu")


def test_the_saved_device_is_recorded_and_the_model_loads_on_the_cpu(tmp_path):
    X, y = _data()
    model = make_model("mlp", **TINY["mlp"], device="auto").fit(X, y)  # here: the CPU
    directory = model.save(tmp_path / "m")
    assert json.loads((directory / "config.json").read_text())["params"]["device"] == "auto"
    loaded = load_model(directory)
    assert loaded.device == "cpu" and np.array_equal(loaded.transform(X), model.transform(X))
    with embedding_device("auto"):
        assert load_model(directory).device == "auto"
    assert load_model(directory, device="cpu").device == "cpu"


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return write_timbre_library(tmp_path_factory.mktemp("lib"), 4)


def test_train_device_reaches_the_saved_model(library, tmp_path):
    r = CliRunner().invoke(app, ["train", "--data", str(library), "--feature", "mfcc",
                                 "--model", "mlp", "--protocol", "kfold", "--folds", "2",
                                 "-p", "epochs=1", "--workers", "1", "--device", "auto",
                                 "--runs", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout.strip().splitlines()[-1])["run_dir"]
    saved = json.loads((tmp_path / run.rsplit("/", 1)[-1] / "model" / "config.json").read_text())
    assert saved["params"]["device"] == "auto"


def test_reproduce_per_instrument_device_reaches_the_run_config(tmp_path):
    r = CliRunner().invoke(app, [
        "reproduce", "per-instrument", "--data", "synthetic", "--songs", "4", "--test-songs",
        "2", "--seconds", "4",
        "--trials", "1", "--epochs", "1", "-p", "channels=4", "-p", "n_mels=16",
        "--conditions", "mix", "--device", "auto", "--runs", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout.strip().splitlines()[-1])["run_dir"]
    config = json.loads((tmp_path / run.rsplit("/", 1)[-1] / "config.json").read_text())
    assert config["model_params"]["device"] == "auto"


@no_gpu
@pytest.mark.parametrize("args", [
    ["train", "--model", "mlp"],
    ["reproduce", "per-instrument", "--quick"],
    ["reproduce", "multidim", "--quick"],
    ["reproduce", "table1", "--models", "mlp"],
    ["index", "build", ".", "--out", "nowhere"],
    ["query", "no-such-index", "x.wav"],
])
def test_every_command_refuses_a_missing_gpu_in_one_line(args, tmp_path):
    r = CliRunner().invoke(app, [*args, "--device", "cuda", *(
        ["--runs", str(tmp_path)] if args[0] in ("train", "reproduce") else [])])
    assert r.exit_code != 0 and "no CUDA device" in r.output, r.output
    assert "Traceback" not in r.output
