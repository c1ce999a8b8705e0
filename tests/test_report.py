"""``mirsim report RUN_DIR`` end to end, on tiny runs of synthetic tones."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from synthetic_audio import SR, harmonic_tone, write_timbre_library
from typer.testing import CliRunner

from mirsim.cli import app

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: odd characters in file names, to check that the page escapes them
NAME = "{label} {i} <&ü>.wav"


def _run(args: list[str]):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def library(tmp_path_factory, isolated_env) -> Path:
    """Three timbres (labels) x 8 pitches: 24 one-second tones."""
    return write_timbre_library(tmp_path_factory.mktemp("report-lib"), 8, NAME)


@pytest.fixture(scope="module")
def train_run(library, tmp_path_factory) -> Path:
    """A `mirsim train` run (MLP, a few epochs, 3 folds) with its saved model."""
    runs = tmp_path_factory.mktemp("report-runs")
    r = _run(["train", "--feature", "mfcc", "--data", library, "--model", "mlp", "--folds", 3, "-p", "epochs=4",
              "-p", "batch_size=16", "--workers", 1, "--jobs", 1, "--threads", 1,
              "--runs", runs])
    assert r.exit_code == 0, r.output
    return next(runs.iterdir())


class _Page(HTMLParser):
    """Tags, and every attribute that can make a browser load something."""

    LOADING = frozenset({"src", "href", "srcset", "data", "poster", "action", "background"})

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[str] = []
        self.references: list[str] = []
        self.images: list[str] = []
        self.audio: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in self.LOADING:
                self.references.append(value or "")
        src = dict(attrs).get("src") or ""
        (self.images if tag == "img" else self.audio if tag == "audio" else []).append(src)


def _payload(uri: str, mime: str) -> bytes:
    prefix = f"data:{mime};base64,"
    assert uri.startswith(prefix), uri[:40]
    return base64.b64decode(uri[len(prefix):], validate=True)


def _check_self_contained(text: str) -> _Page:
    page = _Page(text)
    assert page.references and all(r.startswith(("data:", "#")) for r in page.references)
    assert not {"link", "script", "iframe", "object", "embed"} & set(page.tags)
    for needle in ("http://", "https://", "file:", "url("):
        assert needle not in text
    return page


def _check_audio(uris: list[str], seconds: float = 1.0) -> None:
    for uri in uris:
        y, sr = sf.read(io.BytesIO(_payload(uri, "audio/wav")))
        assert sr == 16000 and y.ndim == 1
        assert len(y) == round(seconds * sr)  # the tones last 1 s (< the 3 s clip)
        assert np.isfinite(y).all() and np.abs(y).max() > 0.01


def _check_pngs(paths: list[Path], page: _Page) -> None:
    embedded = [_payload(uri, "image/png") for uri in page.images]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        with Image.open(path) as image:
            image.verify()
        assert data in embedded  # the page shows the same image


def test_train_run_report_is_self_contained(train_run):
    r = _run(["report", train_run])
    assert r.exit_code == 0, r.output
    out = train_run / "report.html"
    assert r.stdout.strip().splitlines()[-1] == str(out)
    text = out.read_text(encoding="utf-8")
    page = _check_self_contained(text)

    metrics = json.loads((train_run / "metrics.json").read_text())["metrics"]
    for stat in metrics.values():
        assert f"{stat['mean']:.3f} ± {stat['std']:.3f}" in text
    pngs = sorted(train_run.glob("report-*.png"))
    assert [p.name for p in pngs] == ["report-distances.png", "report-map.png",
                                      "report-metrics.png"]
    _check_pngs(pngs, page)
    assert len(page.images) == 3
    assert len(page.audio) == 3 * 6  # 3 queries and their 5 neighbours
    _check_audio(page.audio)
    # the held-out embeddings of the last fold (8 of the 24 items), and the page says so
    assert ("the 8 test items of fold 3 of 3, embedded by the model trained without them"
            in text)
    assert "searched among these held-out items only" in text
    assert "nearest of the 8 held-out test items" in text
    with np.load(train_run / "test_embeddings.npz") as held:
        held_ids = {str(i) for i in held["ids"]}
    listed = _item_ids(text)  # queries and neighbours: all among the held-out items
    assert len(listed) == 3 * 6 and set(listed) <= held_ids
    assert "&lt;&amp;ü&gt;" in text and "<&ü>" not in text  # names are escaped
    assert not list(train_run.glob(".*.tmp"))  # atomic writes leave nothing behind


def _item_ids(text: str) -> list[str]:
    """Ids of the sounds listed in the neighbours section (queries and neighbours)."""
    import html
    import re

    section = text[text.index('id="neighbours"'):]
    queries = re.findall(r"<h3>Q\d+: (.*?) <span", section)
    rows = re.findall(r"<td class=\"num\">\d+</td><td>(.*?)</td>", section)
    return [html.unescape(i) for i in queries + rows]


def test_without_held_out_embeddings_the_final_model_embeds_every_item(train_run, tmp_path):
    old = shutil.copytree(train_run, tmp_path / "old-run", ignore=shutil.ignore_patterns(
        "report*", "test_embeddings.npz"))  # as a run made before runs kept them
    r = _run(["report", old])
    assert r.exit_code == 0, r.output
    text = (old / "report.html").read_text(encoding="utf-8")
    assert "those of all 24 usable items" in text
    assert "embedded by the run&#x27;s saved mlp model" in text
    assert "This run keeps no held-out embeddings (test_embeddings.npz)" in text
    assert "nearest of all 24 items" in text and "fold 3 of 3" not in text
    assert len(_check_self_contained(text).audio) == 3 * 6
    assert len(list(old.glob("report-*.png"))) == 3


def test_out_option_and_number_of_queries(train_run, tmp_path):
    out = tmp_path / "reports" / "mine.html"
    r = _run(["report", train_run, "--out", out, "--queries", 1])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().splitlines()[-1] == str(out)
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "mine-distances.png", "mine-map.png", "mine-metrics.png", "mine.html"]
    page = _check_self_contained(out.read_text(encoding="utf-8"))
    assert len(page.audio) == 6


def test_demo_run_lists_every_model_and_marks_the_saved_one(library, tmp_path):
    r = _run(["demo", "--data", library, "--models", "euclidean,linear", "--folds", 3,
              "--workers", 1, "--jobs", 1, "--runs", tmp_path])
    assert r.exit_code == 0, r.output
    run = next(tmp_path.iterdir())
    r = _run(["report", run, "--queries", 2])
    assert r.exit_code == 0, r.output
    text = (run / "report.html").read_text(encoding="utf-8")
    for result in json.loads((run / "metrics.json").read_text()).values():
        for stat in result["metrics"].values():
            assert f"{stat['mean']:.3f} ± {stat['std']:.3f}" in text
    assert "linear <span class=\"muted\">(saved model)</span>" in text
    with np.load(run / "test_embeddings.npz") as held:  # of the saved model's row
        assert str(held["model"]) == "linear" and held["embeddings"].shape == (8, 512)
    assert "the 8 test items of fold 3 of 3, embedded by the model trained without them" in text
    page = _check_self_contained(text)
    assert len(page.audio) == 2 * 6 and len(list(run.glob("report-*.png"))) == 3


def test_table1_run_has_metrics_and_says_why_there_is_no_map(library, tmp_path):
    r = _run(["reproduce", "table1", "--data", library, "--features", "mfcc,random",
              "--models", "euclidean", "--folds", 3, "--workers", 1, "--jobs", 1,
              "--runs", tmp_path])
    assert r.exit_code == 0, r.output
    run = next(tmp_path.iterdir())
    r = _run(["report", run])
    assert r.exit_code == 0, r.output
    assert "trains one model per table cell and keeps none" in r.stderr
    text = (run / "report.html").read_text(encoding="utf-8")
    cells = json.loads((run / "table1.json").read_text())["cells"]["euclidean"]
    for feature in ("mfcc", "random"):
        stat = cells[feature]["map_at_r"]
        assert f"{stat['mean']:.3f} ± {stat['std']:.3f}" in text
    assert "No map, heatmap or neighbours: a `reproduce table1` run trains one model" in text
    page = _check_self_contained(text)
    assert page.audio == [] and len(page.images) == 1
    _check_pngs([run / "report-metrics.png"], page)
    assert not (run / "report-map.png").exists()


def test_metric_vs_classification_run_is_reported_with_its_metrics(library, tmp_path):
    r = _run(["reproduce", "metric-vs-classification", "--data", library, "--quick", "--rows",
              "classifier", "--folds", 2, "--workers", 1, "--jobs", 1, "--runs", tmp_path])
    assert r.exit_code == 0, r.output
    run = next(tmp_path.iterdir())
    r = _run(["report", run])
    assert r.exit_code == 0, r.output
    assert "a `reproduce metric-vs-classification` run trains one model per table cell" in \
        r.stderr.replace("\n", " ")
    text = (run / "report.html").read_text(encoding="utf-8")
    cell = json.loads((run / "metric_vs_classification.json").read_text())["cells"][
        "classifier"]["mfcc"]
    for name in ("r_at_1", "r_at_8", "label_auc"):
        assert f"{cell[name]['mean']:.3f} ± {cell[name]['std']:.3f}" in text
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", text)
    assert {"R@1", "R@8", "label AUC"} <= set(headers)
    assert "queries" not in headers  # query counts are not a metric


def test_missing_model_or_moved_data_is_said_in_the_page(train_run, library, tmp_path):
    no_model = shutil.copytree(train_run, tmp_path / "no-model", ignore=shutil.ignore_patterns(
        "report*"))
    shutil.rmtree(no_model / "model")
    assert _run(["report", no_model]).exit_code == 0  # held-out embeddings need no model
    assert len(list(no_model.glob("*.png"))) == 3
    assert "fold 3 of 3" in (no_model / "report.html").read_text(encoding="utf-8")
    (no_model / "test_embeddings.npz").unlink()
    r = _run(["report", no_model])
    assert r.exit_code == 0, r.output
    text = (no_model / "report.html").read_text(encoding="utf-8")
    assert "this run saved no model (it was trained with --no-save-model)" in text
    # the earlier report's map and heatmap are gone with it
    assert [p.name for p in no_model.glob("*.png")] == ["report-metrics.png"]

    moved = shutil.copytree(train_run, tmp_path / "moved", ignore=shutil.ignore_patterns(
        "report*"))
    config = json.loads((moved / "config.json").read_text())
    (moved / "config.json").write_text(json.dumps({**config, "data": "gone/lib"}))
    r = _run(["report", moved])
    assert r.exit_code == 0, r.output
    assert "the run's data 'gone/lib' is not a data set name" in r.stderr.replace("\n", "")
    assert "pass --data" in (moved / "report.html").read_text(encoding="utf-8")
    r = _run(["report", moved, "--data", library])
    assert r.exit_code == 0, r.output
    assert len(list(moved.glob("report-*.png"))) == 3


@pytest.mark.parametrize("make, extra, message", [
    (lambda d: d / "nowhere", [], "no such run directory"),
    (lambda d: (d / "f.txt").write_text("x") and d / "f.txt", [], "not a directory"),
    (lambda d: d, [], "not a mirsim run directory (config.json missing)"),
    (lambda d: (d / "config.json").write_text("{oops") and d, [], "not valid JSON"),
    (lambda d: (d / "config.json").write_text("[1]") and d, [], "no 'command' entry"),
    (lambda d: (d / "config.json").write_text('{"command": "train"}') and d,
     ["--out", "{dir}"], "is a directory"),
    (lambda d: (d / "config.json").write_text('{"command": "train"}') and d,
     ["--queries", "-1"], "number of queries must be 0 or more"),
    (lambda d: (d / "config.json").write_text('{"command": "train"}') and d,
     ["--max-items", "3"], "max_items must be at least 10"),
])
def test_bad_run_directories_and_options_are_one_line_errors(tmp_path, make, extra, message):
    run_dir = make(tmp_path)
    r = _run(["report", run_dir, *[a.replace("{dir}", str(tmp_path)) for a in extra]])
    assert r.exit_code == 2, r.output
    assert message in r.stderr.replace("\n", "")
    assert r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) <= 3
    assert not list(tmp_path.rglob("report*"))


# -- leave-one-out runs and numeric labels ----------------------------------------------------
def _numeric_library(root: Path) -> Path:
    """Labels 1, 2, 10 and 11 (folder names), three tones each."""
    for label, n_harmonics in (("1", 1), ("2", 4), ("10", 12), ("11", 30)):
        (root / label).mkdir(parents=True)
        for i, f in enumerate((200, 230, 260)):
            sf.write(root / label / f"{i}.wav", harmonic_tone(f, n_harmonics, i), SR)
    return root


def test_a_leave_one_out_run_says_so_with_its_real_number_of_folds(isolated_env, tmp_path):
    lib = _numeric_library(tmp_path / "lib")
    r = _run(["train", "--feature", "mfcc", "--data", lib, "--model", "euclidean", "--protocol", "loo",
              "--workers", 1, "--jobs", 1, "--runs", tmp_path / "runs"])
    assert r.exit_code == 0, r.output
    run = next((tmp_path / "runs").iterdir())
    r = _run(["report", run])
    assert r.exit_code == 0, r.output
    text = (run / "report.html").read_text(encoding="utf-8")
    assert "<dt>folds</dt><dd>leave-one-out, 12 folds</dd>" in text
    assert "<dd>5</dd>" not in text  # the --folds default, which loo ignores


def test_numeric_labels_sort_as_numbers_in_legend_and_heatmap():
    from mirsim.reports.plots import (distance_figure, label_colours, label_order, map_figure,
                                      pairwise_distances)

    labels = np.array(["10", "2", "1", "11", "2", "10", "2"])
    groups = np.array(["g10", "g10", "g1", "g11", "g2", "g9", "g10"])
    ids = np.array(["a", "b", "c", "d", "e", "f", "a"])
    order = label_order(labels, groups, ids)
    assert [(labels[i], groups[i], ids[i]) for i in order] == [
        ("1", "g1", "c"), ("2", "g2", "e"), ("2", "g10", "a"), ("2", "g10", "b"),
        ("10", "g9", "f"), ("10", "g10", "a"), ("11", "g11", "d")]
    assert list(label_colours(labels.tolist())) == ["1", "2", "10", "11"]
    xy = np.random.default_rng(0).standard_normal((len(labels), 2))
    legend = map_figure(xy, labels).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["1", "2", "10", "11"]
    D = pairwise_distances(xy[order])
    ticks = distance_figure(D, labels[order]).axes[0].get_yticklabels()
    assert [t.get_text() for t in ticks] == ["1", "2", "10", "11"]


def test_natural_order_of_mixed_names():
    from mirsim.reports.plots import natural_key

    names = ["cluster 10", "Cluster 9", "cluster 9b", "cluster 9", "10", "9", "b", "B"]
    assert sorted(names, key=natural_key) == ["9", "10", "B", "b", "Cluster 9", "cluster 9",
                                              "cluster 9b", "cluster 10"]


# -- agreement with listeners -----------------------------------------------------------------
def _listener_file(library: Path, path: Path) -> Path:
    """Two listeners: one groups by timbre, the other puts the two richer timbres together."""
    from mirsim.datasets import load_collection

    items = load_collection(str(library)).items
    lumped = {"dull": "a", "mellow": "b", "bright": "b"}
    rows = [("by-timbre", i, lab) for i, lab in zip(items["id"], items["label"])]
    rows += [("lumper", i, lumped[lab]) for i, lab in zip(items["id"], items["label"])]
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("listener", "fname", "cluster"), *rows])
    return path


def test_a_run_scored_against_listeners_plots_each_listener(library, tmp_path):
    listeners = _listener_file(library, tmp_path / "listeners.csv")
    r = _run(["train", "--feature", "mfcc", "--data", library, "--model", "euclidean", "--folds", 3,
              "--judgments", listeners, "--workers", 1, "--jobs", 1, "--runs", tmp_path / "r"])
    assert r.exit_code == 0, r.output
    run = next((tmp_path / "r").iterdir())
    r = _run(["report", run])
    assert r.exit_code == 0, r.output
    text = (run / "report.html").read_text(encoding="utf-8")
    page = _check_self_contained(text)
    assert "Agreement with listeners" in text and "each of the 2 listeners" in text
    assert "Grey: the human reference" in text
    assert "Triplet agreement: mean ± standard deviation over listeners" in text
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    stat = metrics["triplet_agreement"]
    assert f"{stat['mean']:.3f} ± {stat['std']:.3f}" in text  # in the metrics table
    pngs = sorted(run.glob("report-*.png"))
    assert [p.name for p in pngs] == ["report-distances.png", "report-listeners.png",
                                      "report-map.png", "report-metrics.png"]
    _check_pngs(pngs, page)


def test_a_table1_run_plots_one_bar_per_cell_and_the_human_reference(library, tmp_path):
    from mirsim.artefacts.runs import read_run
    from mirsim.reports.metrics import listener_series
    from mirsim.reports.plots import listener_figure

    listeners = _listener_file(library, tmp_path / "listeners.csv")
    r = _run(["reproduce", "table1", "--data", library, "--features", "mfcc,random",
              "--models", "euclidean", "--protocol", "group-kfold", "--folds", 3,
              "--judgments", listeners, "--workers", 1, "--jobs", 1, "--runs", tmp_path / "r"])
    assert r.exit_code == 0, r.output
    run = next((tmp_path / "r").iterdir())
    data = listener_series(read_run(run))
    table = json.loads((run / "table1.json").read_text())
    assert data.listeners == ["by-timbre", "lumper"]
    assert [name for name, _ in data.series] == ["euclidean · mfcc", "euclidean · random"]
    assert data.series[0][1] == table["cells"]["euclidean"]["mfcc"]["listeners"][
        "triplet_agreement"]["per_listener"]
    assert data.human == table["judgments"]["human_reference"]["triplet_agreement"][
        "per_listener"]
    axes = listener_figure(data).axes[0]
    assert len(axes.containers) == 3  # two cells and the human reference
    assert [b.get_height() for b in axes.containers[2]] == pytest.approx(data.human)
    r = _run(["report", run])
    assert r.exit_code == 0, r.output
    assert (run / "report-listeners.png").exists()
    # the metrics table lists the agreement, and nothing that is not a metric
    text = (run / "report.html").read_text(encoding="utf-8")
    assert "triplet agreement" in text and ">listeners<" not in text and ">queries<" not in text


def test_a_run_without_judgments_has_no_listener_plot(train_run):
    from mirsim.artefacts.runs import read_run
    from mirsim.reports.metrics import listener_series

    assert listener_series(read_run(train_run)) is None
