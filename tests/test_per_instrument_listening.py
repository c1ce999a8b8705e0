"""The per-instrument paper's listening sets exported from a run: a Slakh-layout folder, a
tiny ``reproduce per-instrument`` run on it, ``listen design --per-instrument``, answers
through the web app, and ``mirsim report`` giving the true rate with its 95 % interval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mirsim.cli import app
from mirsim.listening import analysis as A
from mirsim.listening.app import create_listen_app, issue_links
from mirsim.listening.design import load_test

SR = 16000


def _slakh_folder(root: Path, n_tracks: int, seconds: float) -> Path:
    """Tracks in Slakh's layout: drums (noise bursts at a rate of the track's), bass and
    piano (tones of the track's own pitches), guitar; the mix is their sum."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    programs = {"S00": (128, True), "S01": (33, False), "S02": (0, False), "S03": (26, False)}
    for number in range(1, n_tracks + 1):
        folder = root / f"Track{number:05d}"
        (folder / "stems").mkdir(parents=True)
        rate = rng.uniform(1, 6)
        bursts = (np.sin(2 * np.pi * rate * t) > 0.9) * rng.standard_normal(len(t))
        stems = [0.3 * bursts] + [0.1 * np.sin(2 * np.pi * rng.uniform(60, 900) * t)
                                  for _ in range(3)]
        meta = {"stems": {}}
        for (name, (program, is_drum)), y in zip(programs.items(), stems):
            meta["stems"][name] = {"program_num": program, "is_drum": is_drum,
                                   "inst_class": "Drums" if is_drum else "x"}
            sf.write(folder / "stems" / f"{name}.wav", y, SR, subtype="FLOAT")
        sf.write(folder / "mix.wav", np.sum(stems, axis=0), SR, subtype="FLOAT")
        (folder / "metadata.yaml").write_text(yaml.safe_dump(meta))
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("run")
    root = _slakh_folder(base / "slakh", 12, 6.0)
    r = CliRunner().invoke(app, [
        "reproduce", "per-instrument", "--data", "multitrack", "--slakh-root", str(root),
        "--songs", "12", "--test-songs", "8", "--seconds", "6", "--trials", "1",
        "--epochs", "1", "-p", "channels=4", "-p", "n_mels=16", "--conditions", "mix,drums",
        "--runs", str(base / "runs"), "--json"])
    assert r.exit_code == 0, r.output
    return Path(json.loads(r.stdout.strip().splitlines()[-1])["run_dir"])


def _nearest(run_dir: Path, condition: str, song: str, top: int = 2) -> set[str]:
    cell = json.loads((run_dir / "per_instrument.json").read_text())["cells"][condition]
    songs, D = cell["trial-0"]["songs"], np.asarray(cell["trial-0"]["song_distances"])
    i = songs.index(song)
    order = [j for j in np.argsort(D[i], kind="stable") if j != i]
    return {songs[j] for j in order[:top]}


def test_listening_sets_of_a_run_are_served_answered_and_reported(run, tmp_path):
    out = tmp_path / "drums-test"
    r = CliRunner().invoke(app, ["listen", "design", "--per-instrument", str(run),
                                 "--instrument", "drums", "--listeners", "ann,bob",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    test = load_test(out)
    assert test.kind == "triplets" and test.listeners == ["ann", "bob"]
    assert 1 <= len(test.trials) <= 8 and test.extra["instrument"] == "drums"
    assert "drums" in test.extra["instructions"]
    names = [item["name"] for item in test.items]
    for trial in test.trials:  # the paper's sets: positive by drums, negative by the mix
        negative = "c" if trial["positive"] == "b" else "b"
        anchor = names[trial["a"]]
        assert names[trial[trial["positive"]]] in _nearest(run, "drums", anchor)
        assert names[trial[negative]] in _nearest(run, "mix", anchor)
    for item in test.items:  # a clip of the song's mix: 10 s at most (these songs are 6 s)
        clip = Path(item["path"])
        assert clip.parent == (out / "clips").resolve() and Path(item["source"]).name == "mix.wav"
        assert sf.info(clip).duration == pytest.approx(6.0, abs=0.01)

    links = issue_links(out)
    client = TestClient(create_listen_app(out), base_url="http://127.0.0.1")
    session = client.get(f"/api/t/{links['ann']}/session").json()
    assert "drums" in session["instructions"]
    assert client.get(f"/api/t/{links['ann']}/audio/0").content[:4] == b"fLaC"
    right = 0
    for k, trial in enumerate(test.trials):  # ann always hears the positive; bob says B
        for listener, choice in (("ann", trial["positive"]), ("bob", "b")):
            right += choice == trial["positive"]
            r = client.post(f"/api/t/{links[listener]}/answers",
                            json={"trial": k, "answer": {"choice": choice, "confidence": 2}})
            assert r.status_code == 200, r.text
    r = CliRunner().invoke(app, ["report", str(out)])
    assert r.exit_code == 0, r.output
    page = (out / "report.html").read_text()
    rate = A.true_rate(right, 2 * len(test.trials))
    assert (f"<td>drums</td><td class=\"num\">{2 * len(test.trials)}</td><td class=\"num\">"
            f"{rate.rate:.3f}</td><td class=\"num\">{rate.low:.3f} – {rate.high:.3f}") in page

    again = CliRunner().invoke(app, ["listen", "design", "--per-instrument", str(run),
                                     "--instrument", "drums", "--out", str(out)])
    assert again.exit_code != 0 and "already holds a listening test" in again.output


def test_what_cannot_be_exported_is_one_line(run, tmp_path):
    def design(run_dir: Path, *options: str):
        return CliRunner().invoke(app, ["listen", "design", "--per-instrument", str(run_dir),
                                        *options, "--out", str(tmp_path / "t")])

    for options, message in ((["--instrument", "bass"], "no finished 'bass' condition"),
                             (["--instrument", "mix"], "(the run's: drums)"),
                             ([], "needs --instrument"),
                             (["--instrument", "drums", "--kind", "pairwise"],
                              "designs triplets, not pairwise")):
        r = design(run, *options)
        assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output, r.output
    synthetic = tmp_path / "synthetic-run"
    synthetic.mkdir()
    config = json.loads((run / "config.json").read_text())
    (synthetic / "config.json").write_text(json.dumps({**config, "data": "synthetic"}))
    (synthetic / "per_instrument.json").write_text((run / "per_instrument.json").read_text())
    r = design(synthetic, "--instrument", "drums")
    assert r.exit_code != 0 and "made in memory: no audio file" in r.output
    assert not (tmp_path / "t").exists()


def test_a_song_silent_in_one_condition_is_left_out_of_the_comparisons():
    """A separated stem silent in a test song (no segment): the song has no row in that
    condition; Table III and the listening sets use the songs every condition has."""
    from mirsim.experiments.per_instrument import listening_design, summarise

    rng = np.random.default_rng(0)
    songs = [f"s{i}" for i in range(10)]

    def cell(names):
        P = rng.random((len(names), 2))
        return {"trial-0": {"accuracy": 0.5, "songs": names,
                            "song_distances": np.linalg.norm(P[:, None] - P[None], axis=-1)}}

    table = summarise({"cells": {"mix": cell(songs), "separated-bass": cell(songs[1:])}})
    assert table["correlation_songs"] == songs[1:] and len(table["correlations"]) == 1
    test = listening_design(table, "separated-bass", {s: f"/{s}.flac" for s in songs}, seed=1)
    assert [item["name"] for item in test.items] == songs[1:] and test.trials
