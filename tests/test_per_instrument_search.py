"""Per-instrument search: a ``reproduce per-instrument`` run keeps its models; ``mirsim index
build DIR --run RUN`` embeds every song once per instrument (original stems of Slakh-layout
songs, separated stems of the others); ``mirsim query --aspect drums`` ranks by the drums
centroids exactly as computed here by hand; the errors are one line; the web API serves each
song's stem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mirsim.cli.index import standalone_app
from mirsim.index import SoundIndex, build_index

pytestmark = pytest.mark.slow  # the session's run: `reproduce per-instrument --quick` (~1 min)

SR = 22050


def _run(*args):
    return CliRunner().invoke(standalone_app(), [str(a) for a in args])


def _last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def _centroid(model, signal: np.ndarray) -> np.ndarray:
    """The paper's song centroid, by hand: non-silent 3 s segments, log-mel, embedded,
    averaged, normalised."""
    from mirsim.datasets.segments import song_segments
    from mirsim.features.log_mel import log_mel_segments

    pieces = np.stack([p for _, p in song_segments(signal, SR)])
    E = model.transform(log_mel_segments(pieces, SR, n_mels=model.n_mels)).mean(axis=0)
    return E / np.linalg.norm(E)


def _drums_centroids(library: Path, paths: list[str], run: Path) -> np.ndarray:
    """Drums centroids of the indexed songs: a track's drums stem with the drums model, the
    plain song's drums separated by HPSS with the separated-drums model."""
    from mirsim.audio import load_audio
    from mirsim.models.per_instrument import PerInstrumentModel
    from mirsim.separation.hpss import hpss_separate

    models = PerInstrumentModel.load(run / "model").models_
    rows = []
    for rel in paths:
        if rel.endswith("mix.flac"):
            drums, sr = sf.read(library / rel.replace("mix.flac", "stems/S00.flac"),
                                dtype="float32")
            assert sr == SR
            rows.append(_centroid(models["drums"], drums))
        else:
            mix = load_audio(library / rel, sr=SR)
            rows.append(_centroid(models["separated-drums"], hpss_separate(mix, SR)["drums"]))
    return np.stack(rows)


def test_the_run_keeps_the_first_trial_model_of_every_condition(per_instrument_run):
    from mirsim.models.per_instrument import PerInstrumentModel

    saved = PerInstrumentModel.load(per_instrument_run / "model")
    config = json.loads((per_instrument_run / "config.json").read_text())
    assert saved.conditions == config["conditions"] == ["mix", "drums", "bass",
                                                         "separated-drums"]
    assert all(m.seed == config["seed"] for m in saved.models_.values())  # trial 0


def test_index_build_cli_embeds_songs_per_instrument(slakh_library, per_instrument_run,
                                                      tmp_path):
    out = tmp_path / "songs.index"
    result = _run("index", "build", slakh_library, "--out", out, "--run", per_instrument_run,
                  "--workers", "1", "--json")
    assert result.exit_code == 0, result.output
    report = _last_json(result)
    index = SoundIndex.load(out)
    paths = sorted(index.manifest["path"])
    assert paths == [f"Track{i:05d}/mix.flac" for i in range(4)] + ["loose/song.wav"]
    assert report["n_indexed"] == 5 and report["n_skipped"] == 0  # the stems are no songs
    assert index.aspect_space.names == ("mix", "drums", "bass")
    about = index.config["per_instrument"]
    assert about["models"]["drums"] == {"original_stems": "drums",
                                        "separated": "separated-drums"}
    assert about["models"]["bass"] == {"original_stems": "bass", "separated": "bass"}
    assert set(about["fingerprints"]) == {"mix", "drums", "bass", "separated-drums"}
    assert index.info()["instruments"] == ["mix", "drums", "bass"]
    assert index.verify().ok

    # the drums block of every song is its drums centroid, computed here by hand
    order = list(index.manifest["path"])
    expected = _drums_centroids(slakh_library, order, per_instrument_run)
    stored = np.asarray(index.aspect_rows[:, index.aspect_space.slices["drums"]])
    assert np.abs(stored - expected).max() < 1e-4


def test_query_aspect_drums_ranks_by_the_drums_centroids(per_instrument_index, slakh_library,
                                                         per_instrument_run):
    index = SoundIndex.load(per_instrument_index)
    order = list(index.manifest["path"])
    drums = _drums_centroids(slakh_library, order, per_instrument_run)
    query = order.index("Track00001/mix.flac")
    distances = 1 - drums @ drums[query]
    by_hand = [order[j] for j in np.argsort(distances, kind="stable") if j != query]

    result = _run("query", per_instrument_index, slakh_library / order[query], "--aspect",
                  "drums", "-k", "4", "--json")
    assert result.exit_code == 0, result.output
    found = _last_json(result)["results"]
    assert [r["relpath"] for r in found] == by_hand
    assert [r["distance"] for r in found] == pytest.approx(
        sorted(np.delete(distances, query)), abs=1e-4)
    assert [r["aspect_distances"]["drums"] for r in found] == [r["distance"] for r in found]

    mixed = _run("query", per_instrument_index, slakh_library / order[query], "-k", "4",
                 "--json")
    assert mixed.exit_code == 0 and len(_last_json(mixed)["results"]) == 4


def test_a_plain_song_outside_the_index_is_separated(per_instrument_index, slakh_library,
                                                     per_instrument_run, tmp_path):
    from mirsim.audio import load_audio
    from mirsim.models.per_instrument import PerInstrumentModel
    from mirsim.separation.hpss import hpss_separate

    mix = load_audio(slakh_library / "Track00002/mix.flac", sr=SR)
    song = tmp_path / "new.wav"
    sf.write(song, 0.8 * mix, SR)  # new content: embedded on the fly
    index = SoundIndex.load(per_instrument_index)
    result = index.query_aspects(song, "drums=1", k=5)
    assert not result.in_index
    models = PerInstrumentModel.load(per_instrument_run / "model").models_
    mine = _centroid(models["separated-drums"],
                     hpss_separate(load_audio(song, sr=SR), SR)["drums"])
    rows = np.asarray(index.aspect_rows[:, index.aspect_space.slices["drums"]])
    order = list(index.manifest["path"])
    by_hand = [order[j] for j in np.argsort(1 - rows @ mine, kind="stable")]
    assert [n.relpath for n in result.results] == by_hand


@pytest.mark.parametrize("args, message", [
    (["--aspect", "flute"], "error: unknown aspect 'flute' (aspects: mix, drums, bass)"),
    (["--aspects", "drums=1,guitar=1"], "unknown aspect 'guitar' (aspects: mix, drums, bass)"),
])
def test_an_unknown_aspect_is_a_one_line_error(per_instrument_index, slakh_library, args,
                                               message):
    result = _run("query", per_instrument_index, slakh_library / "loose/song.wav", *args)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_aspect_of_an_index_without_instruments_is_a_one_line_error(slakh_library, tmp_path,
                                                                   feature_cache):
    out = tmp_path / "mfcc.index"
    build_index(slakh_library, out, feature="mfcc", cache=feature_cache)
    result = _run("query", out, slakh_library / "loose/song.wav", "--aspect", "drums")
    assert result.exit_code == 2 and "has no aspects" in result.output
    assert "reproduce per-instrument" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_run_without_saved_models_is_a_one_line_error(per_instrument_run, slakh_library,
                                                        tmp_path):
    old = tmp_path / "old-run"
    old.mkdir()
    shutil.copy(per_instrument_run / "config.json", old / "config.json")  # no model/
    result = _run("index", "build", slakh_library, "--out", tmp_path / "x.index", "--run", old)
    assert result.exit_code == 2, result.output
    assert "no saved model of mix, drums, bass, separated-drums" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_changed_models_rebuild_the_index(per_instrument_run, slakh_library, tmp_path,
                                          feature_cache):
    from mirsim.models.per_instrument import PerInstrumentModel

    run = tmp_path / "run"
    shutil.copytree(per_instrument_run, run)
    out = tmp_path / "songs.index"
    build_index(slakh_library, out, run_dir=run, cache=feature_cache)
    before = np.load(out / "aspects.npy")
    models = PerInstrumentModel.load(run / "model").models_
    retrained = models["drums"].set_params(seed=99).fit(
        np.random.default_rng(0).random((8, 32 * 130), dtype=np.float32), np.arange(8) % 2)
    PerInstrumentModel.save_condition(run / "model", "drums", retrained)
    new_song = tmp_path / "n.wav"
    sf.write(new_song, np.random.default_rng(1).standard_normal(SR * 4) * 0.1, SR)
    old = _run("query", out, new_song, "--aspect", "drums")  # must embed: the models changed
    assert old.exit_code == 2 and "rebuild the index" in old.output
    report = build_index(slakh_library, out, run_dir=run, cache=feature_cache)
    assert "another feature or model" in report["full_rebuild_reason"]
    after = np.load(out / "aspects.npy")
    drums = SoundIndex.load(out).aspect_space.slices["drums"]
    assert not np.allclose(before[:, drums], after[:, drums])
    assert np.allclose(before[:, :drums.start], after[:, :drums.start], atol=1e-6)  # mix


# -- the web API: stems ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(per_instrument_index, tmp_path_factory):
    from mirsim.server import create_app
    from mirsim.server.maps import MapSettings

    app = create_app(per_instrument_index, map_settings=MapSettings(method="pca"))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def test_api_serves_each_songs_stem(client, per_instrument_index, slakh_library):
    index = SoundIndex.load(per_instrument_index)
    order = list(index.manifest["path"])
    track, plain = order.index("Track00000/mix.flac"), order.index("loose/song.wav")
    assert client.get("/api/info").json()["instruments"] == ["mix", "drums", "bass"]
    r = client.get(f"/api/items/{track}/stem", params={"aspect": "drums"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("audio/")
    assert r.content == (slakh_library / "Track00000/stems/S00.flac").read_bytes()
    mix = client.get(f"/api/items/{track}/stem", params={"aspect": "mix"})
    assert mix.content == (slakh_library / "Track00000/mix.flac").read_bytes()
    sep = client.get(f"/api/items/{plain}/stem", params={"aspect": "bass"})
    assert sep.status_code == 200 and sep.headers["content-type"] == "audio/wav"
    from mirsim.audio import load_audio
    from mirsim.separation.hpss import hpss_separate

    y, sr = sf.read(__import__("io").BytesIO(sep.content), dtype="float32")
    expected = hpss_separate(load_audio(slakh_library / "loose/song.wav", sr=SR), SR)["bass"]
    assert sr == SR and len(y) == len(expected)
    assert np.abs(y - expected).max() < 2e-4  # 16-bit WAV
    again = client.get(f"/api/items/{plain}/stem", params={"aspect": "bass"})
    assert again.content == sep.content  # cached
    bad = client.get(f"/api/items/{track}/stem", params={"aspect": "flute"})
    assert bad.status_code == 400 and bad.json()["detail"] == (
        "unknown instrument (instruments: mix, drums, bass)")
    assert client.get("/api/items/99/stem", params={"aspect": "drums"}).status_code == 404


def test_a_copy_of_a_mix_without_its_stems_is_separated_not_read_from_the_cache(
        per_instrument_index, slakh_library, per_instrument_run, tmp_path, feature_cache):
    from mirsim.audio import load_audio
    from mirsim.models.per_instrument import PerInstrumentModel
    from mirsim.separation.hpss import hpss_separate

    mixes = tmp_path / "mixes"
    mixes.mkdir()
    shutil.copy(slakh_library / "Track00003/mix.flac", mixes / "Track00003.flac")
    shutil.copy(slakh_library / "loose/song.wav", mixes / "song.wav")
    out = tmp_path / "mixes.index"  # the same feature cache as the Slakh-layout index's
    build_index(mixes, out, run_dir=per_instrument_run, cache=feature_cache)
    index = SoundIndex.load(out)
    drums = index.aspect_space.slices["drums"]
    row = list(index.manifest["path"]).index("Track00003.flac")
    separated = hpss_separate(load_audio(mixes / "Track00003.flac", sr=SR), SR)["drums"]
    models = PerInstrumentModel.load(per_instrument_run / "model").models_
    expected = _centroid(models["separated-drums"], separated)
    assert np.abs(np.asarray(index.aspect_rows[row, drums]) - expected).max() < 1e-4
    tracks = SoundIndex.load(per_instrument_index)
    with_stems = tracks.aspect_rows[list(tracks.manifest["path"]).index("Track00003/mix.flac")]
    assert np.abs(np.asarray(with_stems[drums]) - expected).max() > 1e-3
