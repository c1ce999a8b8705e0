"""The web app's JSON API (``mirsim serve``) on a small real index built from synthetic audio,
through FastAPI's TestClient: every endpoint, uploads (sizes, bad audio), the audio files it
may send and the ones it must not, the map cache, OpenAPI."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mirsim.cli.index import standalone_app as query_app
from mirsim.cli.serve import standalone_app
from mirsim.index import SoundIndex
from mirsim.server import create_app
from synthetic_audio import SR, harmonic_tone, write_timbre_library

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """Three timbres x 6 pitches (odd file names), one FLAC, and a secret file beside it."""
    base = tmp_path_factory.mktemp("server")
    root = base / "my samples"
    write_timbre_library(root, 6, "{label} {i} ü#%.wav")
    sf.write(root / "mellow" / "extra.flac", harmonic_tone(300.0, 4, 9), SR)
    (base / "secret.txt").write_text("TOP SECRET")
    return root


@pytest.fixture(scope="module")
def index_dir(library, tmp_path_factory, feature_cache) -> Path:
    out = tmp_path_factory.mktemp("server-index") / "lib.index"
    SoundIndex.build(library, out, feature="mfcc", n_jobs=1, cache=feature_cache)
    return out


@pytest.fixture(scope="module")
def index(index_dir) -> SoundIndex:
    return SoundIndex.load(index_dir)


@pytest.fixture(scope="module")
def client(index_dir, feature_cache) -> TestClient:
    return TestClient(create_app(index_dir, cache=feature_cache), base_url=LOCAL)


def _row(index: SoundIndex, relpath: str) -> int:
    return int(np.flatnonzero(index.manifest["path"].to_numpy() == relpath)[0])


def _upload(client: TestClient, path: Path, name: str | None = None, **params):
    with open(path, "rb") as f:
        return client.post("/api/query", params=params,
                           files={"file": (name or path.name, f, "application/octet-stream")})


# -- info, map ---------------------------------------------------------------------------------
def test_info_describes_the_index_and_the_server(client, index):
    r = client.get("/api/info")
    assert r.status_code == 200
    info = r.json()
    assert info["n_items"] == 19 == len(index)
    assert info["labels"] == {"bright": 6, "dull": 6, "mellow": 7}
    assert info["feature"] == "mfcc" and info["model_id"] == "euclidean-library"
    assert info["server"]["max_upload_bytes"] == 20_000_000
    assert info["server"]["map_method"] == "tsne"


def test_map_has_every_item_is_cached_atomically_and_read_back(client, index, index_dir,
                                                                 feature_cache):
    r = client.get("/api/map")
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    doc = r.json()
    n = len(index)
    assert (doc["n"], doc["method"], doc["ids"]) == (n, "tsne", list(range(n)))
    assert doc["labels"] == ["bright", "dull", "mellow"]
    assert [doc["labels"][j] for j in doc["label"]] == index.manifest["label"].tolist()
    assert doc["paths"] == index.manifest["path"].tolist()
    xy = np.column_stack([doc["x"], doc["y"]])
    assert xy.shape == (n, 2) and np.abs(xy).max() == pytest.approx(1.0, abs=1e-4)
    cached = list(index_dir.glob("map-tsne-*.npy"))
    assert len(cached) == 1 and not list(index_dir.glob(".map-*"))  # no temporary left
    np.testing.assert_allclose(np.load(cached[0]), xy, atol=1e-4)

    # on the map, a sound's nearest sound mostly has its label (the timbres are distinct)
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(n) * 9
    labels = np.array(doc["label"])
    assert (labels[d.argmin(axis=1)] == labels).mean() >= 0.8

    again = TestClient(create_app(index_dir, cache=feature_cache), base_url=LOCAL)
    second = again.get("/api/map", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in second.headers
    assert second.json()["from_cache"] is True
    assert second.json()["x"] == doc["x"] and second.json()["y"] == doc["y"]


# -- items, neighbours, search -----------------------------------------------------------------
def test_item_record(client, index):
    i = _row(index, "mellow/extra.flac")
    assert client.get(f"/api/items/{i}").json() == {
        "id": i, "path": "mellow/extra.flac", "name": "extra.flac", "label": "mellow",
        "group": "mellow", "duration": pytest.approx(1.0)}


def test_neighbors_are_those_of_mirsim_query(client, index, library):
    i = _row(index, "dull/dull 2 ü#%.wav")
    r = client.get(f"/api/items/{i}/neighbors", params={"k": 5})
    assert r.status_code == 200
    j = r.json()
    assert j["item"]["id"] == i and j["k"] == 5 and len(j["neighbors"]) == 5
    expected = index.query_audio(library / "dull" / "dull 2 ü#%.wav", k=5)  # = `mirsim query`
    assert [n["path"] for n in j["neighbors"]] == [n.relpath for n in expected.results]
    assert [n["distance"] for n in j["neighbors"]] == pytest.approx(
        [n.distance for n in expected.results], abs=1e-5)
    assert i not in [n["id"] for n in j["neighbors"]]
    assert [n["rank"] for n in j["neighbors"]] == [1, 2, 3, 4, 5]
    assert [n["label"] for n in j["neighbors"][:3]] == ["dull"] * 3

    other = client.get(f"/api/items/{i}/neighbors", params={"k": 5, "exclude_same_group": True})
    assert "dull" not in {n["label"] for n in other.json()["neighbors"]}
    everything = client.get(f"/api/items/{i}/neighbors", params={"k": 200}).json()["neighbors"]
    assert len(everything) == len(index) - 1  # no more than there is
    for bad in (0, 201, "x"):
        assert client.get(f"/api/items/{i}/neighbors", params={"k": bad}).status_code == 422


def test_search_by_file_name(client):
    r = client.get("/api/search", params={"q": "MELLOW 3"})
    assert r.status_code == 200
    assert [it["path"] for it in r.json()["items"]] == ["mellow/mellow 3 ü#%.wav"]
    r = client.get("/api/search", params={"q": "ü#%", "limit": 4}).json()
    assert r["total"] == 18 and len(r["items"]) == 4
    assert client.get("/api/search", params={"q": "no such sound"}).json()["total"] == 0
    assert client.get("/api/search", params={"q": "  "}).json()["items"] == []
    assert client.get("/api/search").status_code == 422


# -- query by example --------------------------------------------------------------------------
def test_upload_of_an_indexed_sound_leaves_it_out_like_mirsim_query(client, index, index_dir,
                                                                     library):
    path = library / "bright" / "bright 1 ü#%.wav"
    r = _upload(client, path, k=4)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["query"] == "bright 1 ü#%.wav" and j["in_index"] is True
    assert j["item_ids"] == [_row(index, "bright/bright 1 ü#%.wav")]
    cli = CliRunner().invoke(query_app(), ["query", str(index_dir), str(path), "-k", "4", "--json"])
    expected = json.loads(cli.stdout.strip().splitlines()[-1])  # what `mirsim query` prints
    assert expected["in_index"] is True
    assert [n["path"] for n in j["neighbors"]] == [n["relpath"] for n in expected["results"]]
    assert [n["distance"] for n in j["neighbors"]] == [n["distance"] for n in expected["results"]]
    assert j["item_ids"][0] not in [n["id"] for n in j["neighbors"]]

    j = _upload(client, path, exclude_same_group=True).json()
    assert "bright" not in {n["label"] for n in j["neighbors"]}


def test_upload_of_a_new_sound_is_embedded_with_the_index_pipeline(client, index, tmp_path):
    outside = tmp_path / "new take.wav"
    sf.write(outside, harmonic_tone(233.0, 4, 42), SR)
    uploads_before = set(Path(tempfile.gettempdir()).glob("mirsim-upload-*"))
    j = _upload(client, outside, k=3).json()
    assert set(Path(tempfile.gettempdir()).glob("mirsim-upload-*")) <= uploads_before  # deleted
    assert j["in_index"] is False and j["item_ids"] == []
    expected = index.query_audio(outside, k=3)
    assert [n["path"] for n in j["neighbors"]] == [n.relpath for n in expected.results]
    assert [n["distance"] for n in j["neighbors"]] == pytest.approx(
        [n.distance for n in expected.results], abs=1e-4)
    assert j["neighbors"][0]["label"] == "mellow"


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"hello, I am not a sound" * 10, "not a readable sound file"),
])
def test_bad_audio_upload_is_a_400_with_a_one_line_reason(client, tmp_path, content, reason):
    p = tmp_path / "notes.wav"
    p.write_bytes(content)
    r = _upload(client, p)
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail.startswith("notes.wav: ") and reason in detail and "\n" not in detail
    assert str(tmp_path) not in detail and "mirsim-upload" not in detail  # no server paths


def test_silent_upload_and_missing_file_field(client, tmp_path):
    p = tmp_path / "silence.wav"
    sf.write(p, np.zeros(SR, dtype=np.float32), SR)
    r = _upload(client, p)
    assert r.status_code == 400 and "silent" in r.json()["detail"]
    assert client.post("/api/query", data={"x": "1"}).status_code == 422


def test_oversize_upload_is_refused_with_413(index_dir, tmp_path, feature_cache):
    small = TestClient(create_app(index_dir, max_upload_bytes=50_000, cache=feature_cache),
                       base_url=LOCAL)
    big = tmp_path / "big.wav"  # 200 kB: over the limit and the multipart envelope's slack
    sf.write(big, np.tile(harmonic_tone(220.0, 4, 0), 3)[:50_000], SR, subtype="FLOAT")
    r = _upload(small, big)
    assert r.status_code == 413 and "limit is 50,000" in r.json()["detail"]
    near = tmp_path / "near.wav"  # over the limit, within the multipart slack: counted on copy
    sf.write(near, harmonic_tone(220.0, 4, 0)[:13_000], SR, subtype="FLOAT")
    assert 50_000 < near.stat().st_size < 50_000 + 60_000
    r = _upload(small, near)
    assert r.status_code == 413 and "50,000 bytes" in r.json()["detail"]
    ok = tmp_path / "ok.wav"
    sf.write(ok, harmonic_tone(220.0, 4, 0)[:11_000], SR, subtype="FLOAT")
    assert _upload(small, ok).status_code == 200


def test_upload_without_a_stated_length_is_refused(client):
    def chunks():
        yield b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
        yield b"RIFF" + b"\0" * 100 + b"\r\n--x--\r\n"

    r = client.post("/api/query", content=chunks(),
                    headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 411


# -- audio files -------------------------------------------------------------------------------
def test_audio_serves_exactly_the_file_with_its_content_type(client, index, library):
    for rel, ctype in (("mellow/mellow 4 ü#%.wav", "audio/wav"),
                       ("mellow/extra.flac", "audio/flac")):
        r = client.get(f"/api/items/{_row(index, rel)}/audio")
        assert r.status_code == 200
        assert r.content == (library / rel).read_bytes()
        assert r.headers["content-type"] == ctype and r.headers["accept-ranges"] == "bytes"
    i = _row(index, "mellow/extra.flac")
    r = client.get(f"/api/items/{i}/audio", headers={"Range": "bytes=10-109"})
    assert r.status_code == 206
    assert r.content == (library / "mellow/extra.flac").read_bytes()[10:110]


def test_unknown_items_are_404(client, index):
    n = len(index)
    for url in (f"/api/items/{n}", f"/api/items/{n}/audio", f"/api/items/{n}/neighbors",
                "/api/items/-1/audio", "/api/items/99999999999/audio"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert isinstance(r.json()["detail"], str) and "no item" in r.json()["detail"]


def test_no_request_reaches_a_file_outside_the_manifest(client, library):
    attempts = ["/api/items/..%2F..%2Fsecret.txt/audio",
                "/api/items/0%2F..%2F..%2Fsecret.txt/audio",
                "/api/items/%2E%2E/audio",
                "/api/items/0/audio/../../../secret.txt",
                "/api/items/0/audio/%2F..%2F..%2Fsecret.txt",
                "/api/items/1e3/audio",
                "/api/items/0x1/audio",
                "/static/..%2F..%2F..%2Fsecret.txt",
                "/static/%2e%2e/%2e%2e/%2e%2e/secret.txt",
                "/static/..%5C..%5Capp.py",
                "/secret.txt",
                "/api/secret.txt"]
    for url in attempts:
        r = client.get(url)
        assert r.status_code in (404, 422), (url, r.status_code)
        assert b"TOP SECRET" not in r.content and b"import" not in r.content
    r = client.get("/api/items/0/audio", params={"path": str(library.parent / "secret.txt")})
    assert r.status_code == 200 and b"TOP SECRET" not in r.content  # unknown parameter ignored


def test_a_manifest_path_leaving_the_root_is_never_served(index_dir, tmp_path, feature_cache):
    copy = tmp_path / "tampered.index"
    shutil.copytree(index_dir, copy)
    manifest = pd.read_csv(copy / "manifest.csv", dtype=str, keep_default_na=False)
    manifest.loc[0, "path"] = "../secret.txt"
    manifest.loc[1, "path"] = str((index_dir.parent / "x.wav").resolve())
    manifest.to_csv(copy / "manifest.csv", index=False)
    tampered = TestClient(create_app(copy, cache=feature_cache), base_url=LOCAL)
    for i in (0, 1):
        r = tampered.get(f"/api/items/{i}/audio")
        assert r.status_code == 404 and "not inside the library folder" in r.json()["detail"]


def test_requests_for_other_host_names_are_refused(index_dir, feature_cache):
    foreign = TestClient(create_app(index_dir, cache=feature_cache), base_url="http://evil.example")
    assert foreign.get("/api/info").status_code == 400
    assert TestClient(create_app(index_dir, cache=feature_cache),
                      base_url="http://localhost:8765").get("/api/info").status_code == 200


# -- page, OpenAPI, CLI ------------------------------------------------------------------------
def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<canvas id="map"' in r.text
    for name, ctype in (("app.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and ctype in r.headers["content-type"]


def test_openapi_lists_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    assert {"/api/info", "/api/map", "/api/items/{i}", "/api/items/{i}/neighbors",
            "/api/items/{i}/audio", "/api/search", "/api/query"} <= set(spec["paths"])
    assert "post" in spec["paths"]["/api/query"]
    assert "413" in spec["paths"]["/api/query"]["post"]["responses"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_serve_command_errors_are_one_line(tmp_path, index_dir):
    runner = CliRunner()
    r = runner.invoke(standalone_app(), [str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such index directory" in r.stderr
    r = runner.invoke(standalone_app(), [str(index_dir), "--map", "umap"])
    assert r.exit_code == 2 and "unknown map method 'umap'" in r.stderr
    r = runner.invoke(standalone_app(), [str(index_dir), "--max-upload-mb", "0"])
    assert r.exit_code == 2 and "--max-upload-mb" in r.stderr
