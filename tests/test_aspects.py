"""Aspects in search: the ranking by a weighted sum of sub-space distances (against a hand
computation), the index of a real CSN run (stored aspects, format, verify, exact and
approximate search), ``mirsim query --aspects`` and its one-line errors, and the web API
(aspect neighbours, the map of one aspect)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mirsim.cli.index import standalone_app
from mirsim.index import SoundIndex, SoundIndexError, build_index
from mirsim.index.aspects import (AspectSpace, approximate_aspect_search, aspect_distances,
                                  check_aspect_weights, exact_aspect_search,
                                  parse_aspect_weights, weighted_query)
from mirsim.index.faiss_backend import build_faiss_index
from mirsim.server import create_app
from mirsim.server.maps import MapSettings
from synthetic_audio import SR, harmonic_tone

LOCAL = "http://127.0.0.1"
QUERY = "dull/dull 0.wav"


def _run(*args):
    return CliRunner().invoke(standalone_app(), [str(a) for a in args])


def _last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def _random_rows(n: int, space: AspectSpace, seed: int = 0) -> np.ndarray:
    raw = np.random.default_rng(seed).standard_normal((n, space.width)).astype(np.float32)
    return space.embed(raw) if all(m is None for m in space.masks) else raw


# -- the ranking, by hand ---------------------------------------------------------------------
def test_aspect_distances_match_a_hand_computation():
    # aspects of 2, 1 and 2 columns; query and item written as unit vectors per aspect
    space = AspectSpace(("tempo", "key", "genre"), ((0, 2), (2, 3), (3, 5)), (None,) * 3)
    q = np.array([1.0, 0.0, 1.0, 0.6, 0.8])
    x = np.array([[0.0, 1.0, -1.0, 0.6, 0.8],    # tempo orthogonal, key opposite, genre equal
                  [0.6, 0.8, 1.0, 0.8, 0.6]])    # cos 0.6, 1, 0.96
    w = np.array([1.0, 0.0, 0.5])
    total, per = aspect_distances(q, x, space, w)
    np.testing.assert_allclose(per, [[1.0, 2.0, 0.0], [0.4, 0.0, 0.04]], atol=1e-12)
    np.testing.assert_allclose(total, [1.0 * 1.0 + 0.5 * 0.0, 1.0 * 0.4 + 0.5 * 0.04])
    # the identity behind the search: W - <[w_k q_k], [x_k]>
    np.testing.assert_allclose(w.sum() - x @ weighted_query(q, space, w), total, atol=1e-6)


def test_exact_search_is_the_sorted_weighted_sum_and_a_flat_index_agrees():
    space = AspectSpace(("a", "b", "c"), ((0, 3), (3, 5), (5, 9)), (None,) * 3)
    rows = _random_rows(300, space)
    for w in ([1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.2, 0.3, 0.5]):
        w = np.array(w)
        total, _ = aspect_distances(rows[7], rows, space, w)
        by_hand = [r for r in np.argsort(total, kind="stable") if r != 7][:10]
        assert exact_aspect_search(rows[7], rows, space, w, 10, {7}).tolist() == by_hand
        flat, _ = build_faiss_index(rows, "flat", distance="cosine")  # inner product
        assert approximate_aspect_search(rows[7], rows, space, w, 10, flat,
                                         {7}).tolist() == by_hand


def test_learned_masks_weigh_the_columns_before_normalising():
    mask = np.array([2.0, 0.0, 1.0], dtype=np.float32)
    space = AspectSpace(("a",), ((0, 3),), (mask,))
    np.testing.assert_allclose(space.embed(np.array([[1.0, 5.0, 2.0]])),
                               [[np.sqrt(0.5), 0.0, np.sqrt(0.5)]], rtol=1e-6)
    assert AspectSpace.from_config(space.to_config()) == space


@pytest.mark.parametrize("text, message", [
    ("mood=1", "unknown aspect 'mood' (aspects: tempo, key)"),
    ("tempo=fast", "the weight of 'tempo' must be a number, got 'fast'"),
    ("tempo=-1", "must be a finite number >= 0, got -1.0"),
    ("tempo=inf", "must be a finite number >= 0, got inf"),
    ("tempo=0,key=0", "at least one aspect weight must be above 0 (aspects: tempo, key)"),
    ("tempo", "expected NAME=WEIGHT, got 'tempo'"),
    ("tempo=1,tempo=2", "aspect 'tempo' given twice"),
    ("", "expected NAME=WEIGHT"),
])
def test_bad_weights_are_one_line_errors_listing_the_aspects(text, message):
    with pytest.raises(SoundIndexError) as err:
        parse_aspect_weights(text, ["tempo", "key"])
    assert message in str(err.value) and "(aspects: tempo, key)" in str(err.value)
    assert "\n" not in str(err.value)
    assert check_aspect_weights({"key": 1}, ["tempo", "key"]).tolist() == [0.0, 1.0]


# -- the index of a real CSN run --------------------------------------------------------------
def test_index_of_a_csn_run_keeps_its_subspaces(csn_index, csn_library):
    index = SoundIndex.load(csn_index)
    config = json.loads((csn_index / "index.json").read_text())
    assert config["format_version"] == 2 and config["aspects"]["names"] == ["timbre", "register"]
    space, model = index.aspect_space, index.pipeline.model
    assert space.names == model.dimensions_ and index.info()["aspects"] == ["timbre", "register"]
    X = np.load(csn_index / "features.npy")
    stored = np.asarray(index.aspect_rows)
    for name, s in space.slices.items():  # what the model's own sub-space transform gives
        np.testing.assert_allclose(stored[:, s], model.transform(X, dimension=name),
                                   rtol=1e-4, atol=1e-5)
    report = index.verify()
    assert report.ok and report.checked["aspect_rows"] == len(index)
    broken = csn_index.parent / "broken.index"
    shutil.copytree(csn_index, broken)
    np.save(broken / "aspects.npy", stored[:, ::-1].copy())
    problems = SoundIndex.load(broken).verify(check_files=False).problems
    assert any("stored aspects differ" in p for p in problems)


def test_an_index_without_aspects_is_still_version_1_and_says_so(csn_library, tmp_path,
                                                                 feature_cache):
    out = tmp_path / "mfcc.index"
    index = SoundIndex.build(csn_library, out, feature="mfcc", cache=feature_cache)
    assert index.config["format_version"] == 1 and "aspects" not in index.config
    assert not (out / "aspects.npy").exists() and index.info()["aspects"] == []
    with pytest.raises(SoundIndexError, match="has no aspects") as err:
        index.query_aspects(csn_library / QUERY, "timbre=1", cache=feature_cache)
    assert "\n" not in str(err.value)


def test_query_aspects_ranks_by_the_weighted_sum(csn_index, csn_library, tmp_path):
    index = SoundIndex.load(csn_index)
    A = np.asarray(index.aspect_rows)
    row = index.rows_of_hash(index.columns["sha256"][list(index.columns["path"]).index(QUERY)])[0]
    s = index.aspect_space.slices
    for weights, w in (("timbre=1,register=0.5", (1.0, 0.5)), ("register=1", (0.0, 1.0))):
        r = index.query_aspects(csn_library / QUERY, weights, k=17)
        d_t, d_r = (1 - A[:, s[n]] @ A[row, s[n]] for n in ("timbre", "register"))
        by_hand = w[0] * d_t + w[1] * d_r
        got = [index.columns["path"].tolist().index(n.relpath) for n in r.results]
        assert row not in got and len(got) == 17
        np.testing.assert_allclose([n.distance for n in r.results], by_hand[got], atol=1e-5)
        assert [n.distance for n in r.results] == sorted(n.distance for n in r.results)
        assert r.aspects == {"weights": dict(zip(("timbre", "register"), w)), "search": "exact"}
        assert set(r.results[0].aspect_distances) == {"timbre", "register"}
    # a sound outside the library gets its aspects from its embedding
    outside = tmp_path / "outside.wav"
    sf.write(outside, harmonic_tone(233.0, 4, 7), SR)
    r = index.query_aspects(outside, {"timbre": 1.0}, k=3)
    assert not r.in_index and len(r.results) == 3
    assert r.results[0].distance == pytest.approx(r.results[0].aspect_distances["timbre"], abs=1e-6)
    # leaving out the query's group
    r = index.query_aspects(csn_library / QUERY, "timbre=1", k=20, exclude_same_group=True)
    assert len(r.results) == 12 and {n.label for n in r.results} == {"bright", "mellow"}


def test_approximate_aspect_search_above_the_threshold(csn_library, csn_run, tmp_path,
                                                       feature_cache):
    out = tmp_path / "hnsw.index"
    build_index(csn_library, out, run_dir=csn_run, approximate="hnsw", cache=feature_cache)
    index = SoundIndex.load(out)
    assert index.config["aspects"]["index_params"]["type"] == "hnsw"
    assert (out / "aspects.faiss").is_file()
    r = index.query_aspects(csn_library / QUERY, "timbre=1,register=0.5", k=5)
    exact = SoundIndex.load(out)
    exact.config["aspects"] = {**exact.config["aspects"], "index_type": "flat"}
    expected = exact.query_aspects(csn_library / QUERY, "timbre=1,register=0.5", k=5)
    assert r.aspects["search"] == "approximate" and expected.aspects["search"] == "exact"
    assert [n.relpath for n in r.results] == [n.relpath for n in expected.results]
    # one aspect alone: the graph links sounds near in all of them, so this is scanned
    assert index.query_aspects(csn_library / QUERY, "timbre=1", k=5).aspects["search"] == "exact"
    # a rebuild of an unchanged library reuses the aspects' FAISS index
    build_index(csn_library, out, run_dir=csn_run, approximate="hnsw", cache=feature_cache)
    again = SoundIndex.load(out)
    assert again.config["aspects"] == index.config["aspects"] and again.verify().ok


# -- the command line -------------------------------------------------------------------------
def test_query_command_with_aspects(csn_index, csn_library):
    query = csn_library / QUERY
    r = _run("query", csn_index, query, "--aspects", "timbre=1,register=0.5", "-k", 4, "--json")
    assert r.exit_code == 0, r.output
    j = _last_json(r)
    expected = SoundIndex.load(csn_index).query_aspects(query, "timbre=1,register=0.5", k=4)
    assert j["aspects"] == {"weights": {"timbre": 1.0, "register": 0.5}, "search": "exact"}
    assert [h["relpath"] for h in j["results"]] == [n.relpath for n in expected.results]
    assert set(j["results"][0]["aspect_distances"]) == {"timbre", "register"}
    r = _run("query", csn_index, query, "--aspect", "register", "-k", 3)
    assert r.exit_code == 0, r.output
    assert "1 × register" in r.stdout and "register" in r.stdout.splitlines()[3]
    j = _last_json(_run("query", csn_index, query, "--aspect", "register", "--json"))
    assert j["aspects"]["weights"] == {"timbre": 0.0, "register": 1.0}
    r = _run("index", "info", csn_index)
    assert "timbre, register" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--aspects", "tempo=1"], "unknown aspect 'tempo' (aspects: timbre, register)"),
    (["--aspects", "timbre=loud"], "must be a number, got 'loud' (aspects: timbre, register)"),
    (["--aspects", "timbre=0"], "at least one aspect weight must be above 0"),
    (["--aspect", "pitch"], "unknown aspect 'pitch' (aspects: timbre, register)"),
    (["--aspect", "timbre", "--aspects", "timbre=1"], "not both"),
])
def test_bad_aspect_queries_are_one_line_errors(csn_index, csn_library, args, message):
    r = _run("query", csn_index, csn_library / QUERY, *args)
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_aspects_need_an_index_with_aspects_and_a_sound(csn_library, csn_index, tmp_path,
                                                        feature_cache):
    out = tmp_path / "plain.index"
    build_index(csn_library, out, feature="mfcc", cache=feature_cache)
    r = _run("query", out, csn_library / QUERY, "--aspects", "timbre=1")
    assert r.exit_code == 2 and "has no aspects" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _run("query", csn_index, "--prototype", "dull", "--aspect", "timbre")
    assert r.exit_code == 2 and "needs a query sound" in r.stderr


# -- the web API ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(csn_index, feature_cache) -> TestClient:
    app = create_app(csn_index, cache=feature_cache, map_settings=MapSettings(method="pca"))
    return TestClient(app, base_url=LOCAL)


def test_api_aspect_neighbours_rerank_like_the_query_command(client, csn_index, csn_library):
    info = client.get("/api/info").json()
    assert info["aspects"] == ["timbre", "register"]
    index = SoundIndex.load(csn_index)
    i = list(index.columns["path"]).index(QUERY)
    orders = []
    for weights in ("timbre=1,register=0", "timbre=0,register=1"):
        r = client.get(f"/api/items/{i}/aspect-neighbors", params={"weights": weights, "k": 6})
        assert r.status_code == 200, r.text
        j = r.json()
        expected = index.query_aspects(csn_library / QUERY, weights, k=6)
        assert [n["path"] for n in j["neighbors"]] == [n.relpath for n in expected.results]
        assert [n["distance"] for n in j["neighbors"]] == [n.distance for n in expected.results]
        assert j["weights"] == expected.aspects["weights"] and j["search"] == "exact"
        assert set(j["neighbors"][0]["aspect_distances"]) == {"timbre", "register"}
        orders.append([n["id"] for n in j["neighbors"]])
    assert orders[0] != orders[1]


@pytest.mark.parametrize("params, status, message", [
    ({"weights": "ECHO=1"}, 400, "an unknown aspect (aspects: timbre, register)"),
    ({"weights": "timbre=ECHO"}, 400, "a weight that is not a number (aspects: timbre, reg"),
    ({"weights": "timbre=0,register=0"}, 400, "at least one aspect weight must be above 0"),
    ({"weights": "timbre=-1"}, 400, "the weight of 'timbre' must be a finite number >= 0"),
    ({"weights": "timbre=1", "k": 0}, 422, "k"),
    ({}, 422, "weights"),
])
def test_api_bad_aspect_weights(client, params, status, message):
    r = client.get("/api/items/0/aspect-neighbors", params=params)
    assert r.status_code == status and message in json.dumps(r.json()), r.text
    assert "ECHO" not in r.text  # what is wrong, never what was sent


def test_api_aspects_on_an_index_without_them(csn_library, tmp_path, feature_cache):
    out = tmp_path / "plain.index"
    build_index(csn_library, out, feature="mfcc", cache=feature_cache)
    c = TestClient(create_app(out, cache=feature_cache), base_url=LOCAL)
    assert c.get("/api/info").json()["aspects"] == []
    r = c.get("/api/items/0/aspect-neighbors", params={"weights": "timbre=1"})
    assert r.status_code == 400 and "has no aspects" in r.json()["detail"]
    assert c.get("/api/map", params={"aspect": "timbre"}).status_code == 400


def test_api_map_of_one_aspect_is_computed_once_and_cached(client, csn_index):
    whole = client.get("/api/map").json()
    assert whole.get("aspect") is None
    first = client.get("/api/map", params={"aspect": "register"}).json()
    assert first["aspect"] == "register" and first["n"] == whole["n"] == 18
    assert first["x"] != whole["x"] and first["ids"] == whole["ids"]
    assert client.get("/api/map", params={"aspect": "register"}).json() == first
    cached = sorted(p.name for p in csn_index.glob("*map-pca-*.npy"))
    assert len(cached) == 2 and any(n.startswith("aspect-1-") for n in cached), cached
    fresh = TestClient(create_app(csn_index, map_settings=MapSettings(method="pca")),
                       base_url=LOCAL)
    assert fresh.get("/api/map", params={"aspect": "register"}).json()["from_cache"] is True
    r = client.get("/api/map", params={"aspect": "tempo"})
    assert r.status_code == 400 and "aspects: timbre, register" in r.json()["detail"]
