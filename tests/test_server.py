"""The web app's JSON API (``mirsim serve``) on a small real index built from synthetic audio,
through FastAPI's TestClient: every endpoint, uploads (sizes, bad audio), the audio files it
may send and the ones it must not, the map cache, OpenAPI."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mirsim.cli.index import standalone_app as query_app
from mirsim.cli.serve import LOCAL_NAMES, allowed_hosts, standalone_app
from mirsim.index import SoundIndex, SoundIndexError
from mirsim.server import MapSettings, create_app
from mirsim.server.synthetic import write_synthetic_index
from mirsim.server.app import LOOPBACK_HOSTS
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
    r = _upload(client, p, name="<b>NAME-SENT</b>.wav")
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail.startswith("not a usable sound file: ") and reason in detail
    assert "\n" not in detail
    assert str(tmp_path) not in detail and "mirsim-upload" not in detail  # no server paths
    assert "NAME-SENT" not in r.text  # nor what the request sent (the page names the file)


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


# -- hardening: other sites, odd requests, rebuilt indexes -------------------------------------
def test_a_wildcard_bind_keeps_the_host_check(index_dir, feature_cache):
    assert LOCAL_NAMES == LOOPBACK_HOSTS
    hosts = allowed_hosts("0.0.0.0", ["Samples.LAN", "192.168.1.10"])
    assert "*" not in hosts and {"localhost", "samples.lan", "192.168.1.10"} <= set(hosts)
    app = create_app(index_dir, cache=feature_cache, allowed_hosts=hosts)
    for name, status in (("samples.lan:8765", 200), ("192.168.1.10", 200), ("localhost", 200),
                         ("evil.example", 400), ("samples.lan.evil.example", 400)):
        r = TestClient(app, base_url=f"http://{name}").get("/api/info")
        assert r.status_code == status, name
        assert "evil" not in r.text
    assert allowed_hosts("10.1.2.3")[-1] == "10.1.2.3"  # a given address: itself allowed


@pytest.mark.parametrize("args, message", [
    (["--port", "80000"], "--port must be between 0 and 65535 (got 80000)"),
    (["--port", "-1"], "--port must be between 0 and 65535 (got -1)"),
    (["--allowed-host", "evil.example/x"], "--allowed-host 'evil.example/x': not a host name"),
    (["--allowed-host", "*"], "--allowed-host '*': not a host name"),
    (["--host", "192.0.2.1", "--port", "0"], "not an address of this machine"),
])
def test_bad_serve_options_are_one_line_errors(index_dir, args, message):
    r = CliRunner().invoke(standalone_app(), [str(index_dir), *args])
    assert r.exit_code == 2, r.output
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "serving" not in r.output


def test_a_port_in_use_is_a_one_line_error(index_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = CliRunner().invoke(standalone_app(), [str(index_dir), "--port", str(port)])
    assert r.exit_code == 2
    assert f"cannot listen on 127.0.0.1 port {port}: Address already in use" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "serving" not in r.stderr


def test_security_headers_on_every_answer(client):
    for url in ("/", "/static/app.js", "/api/info", "/api/items/99999", "/nothing-here"):
        r = client.get(url)
        assert r.headers["x-content-type-options"] == "nosniff", url
        assert r.headers["x-frame-options"] == "DENY", url
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, url
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
    refused = TestClient(client.app, base_url="http://evil.example").get("/")
    assert refused.status_code == 400 and refused.headers["x-frame-options"] == "DENY"
    docs = client.get("/docs").headers["content-security-policy"]  # its own: an inline script
    assert "'sha256-" in docs and "frame-ancestors 'none'" in docs


@pytest.mark.parametrize("headers, status", [
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "null"}, 403),
    ({"Origin": "http://127.0.0.1:9999"}, 403),  # same host, another port: another site
    ({"Origin": "https://127.0.0.1"}, 403),
    ({"Referer": "http://evil.example/page.html"}, 403),
    ({"Origin": "http://evil.example", "Referer": "http://127.0.0.1/"}, 403),
    ({"Origin": "http://127.0.0.1"}, 200),
    ({"Referer": "http://127.0.0.1/?q=1"}, 200),
    ({}, 200),  # no browser page sent it (curl, scripts)
])
def test_uploads_from_pages_of_other_sites_are_refused(client, library, headers, status):
    with open(library / "dull" / "dull 1 ü#%.wav", "rb") as f:
        r = client.post("/api/query", headers=headers, files={"file": ("a.wav", f)})
    assert r.status_code == status, r.text
    if status == 403:
        assert "another site" in r.json()["detail"] and "evil" not in r.text


def test_long_requests_are_refused_and_nothing_is_echoed(client):
    marker = "ECHO" * 16_000  # a 64 KB query string (as long as the client library sends)
    r = client.get("/api/search", params={"q": marker})
    assert r.status_code == 414 and "ECHO" not in r.text and len(r.content) < 300
    r = client.get("/api/items/" + "9" * 60_000)
    assert r.status_code == 414 and "999999" not in r.text
    r = client.get("/api/search", params={"q": "ECHO" * 130})  # over max_length, under the bound
    assert r.status_code == 422 and "ECHO" not in r.text
    assert r.json()["detail"][0]["msg"] == "String should have at most 500 characters"
    for url in ("/api/items/0/neighbors?k=<script>ECHO", "/api/items/ECHO<b>",
                "/api/search?q=a&limit=ECHO"):
        r = client.get(url)
        assert r.status_code == 422 and "ECHO" not in r.text and "script" not in r.text, url
    r = client.post("/api/query", headers={"Content-Length": "99999999999999"}, content=b"x")
    assert r.status_code == 413 and "99999999999999" not in r.text


def test_item_ids_are_plain_integers(client, index):
    assert client.get("/api/items/1").json()["id"] == 1
    for bad in ("1.0", "1.5", "+1", "1_0", "%201", "1e0", "%D9%A3", "0x1", "true"):
        for tail in ("", "/neighbors", "/audio"):
            r = client.get(f"/api/items/{bad}{tail}")
            assert r.status_code == 422, (bad, tail, r.status_code)
            assert "whole number" in r.json()["detail"][0]["msg"]
    assert client.get(f"/api/items/{len(index)}").status_code == 404  # an integer: not there


def test_head_on_audio(client, index, library):
    rel = "mellow/extra.flac"
    r = client.head(f"/api/items/{_row(index, rel)}/audio")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) == (library / rel).stat().st_size
    assert r.headers["content-type"] == "audio/flac" and r.headers["accept-ranges"] == "bytes"
    assert client.head(f"/api/items/{len(index)}/audio").status_code == 404


def test_the_server_switches_to_an_index_rebuilt_in_place(library, tmp_path, feature_cache):
    lib = tmp_path / "lib"
    shutil.copytree(library, lib)
    out = tmp_path / "lib.index"
    SoundIndex.build(lib, out, feature="mfcc", n_jobs=1, cache=feature_cache)
    client = TestClient(create_app(out, cache=feature_cache), base_url=LOCAL)
    before = client.get("/api/info")
    assert before.json()["n_items"] == 19
    old_version = before.headers["x-mirsim-index"]
    assert before.json()["index_version"] == old_version
    assert client.get("/api/items/19").status_code == 404

    new = lib / "dull" / "new low.wav"
    sf.write(new, harmonic_tone(150.0, 1, 7), SR)
    sf.write(lib / "bright" / "new high.wav", harmonic_tone(300.0, 30, 8), SR)
    SoundIndex.build(lib, out, feature="mfcc", n_jobs=1, cache=feature_cache)  # same --out

    after = client.get("/api/info")
    assert after.json()["n_items"] == 21 and after.headers["x-mirsim-index"] != old_version
    rebuilt = SoundIndex.load(out)
    i = _row(rebuilt, "dull/new low.wav")
    assert client.get(f"/api/items/{i}").json()["path"] == "dull/new low.wav"
    assert client.get(f"/api/items/{i}/audio").content == new.read_bytes()
    doc = client.get("/api/map").json()
    assert doc["n"] == 21 and doc["paths"] == rebuilt.manifest["path"].tolist()
    j = _upload(client, new, k=3).json()
    assert j["in_index"] is True and j["item_ids"] == [i]
    assert client.get("/api/search", params={"q": "new "}).json()["total"] == 2
    # a page that loaded the old index is told to reload instead of being answered
    stale = client.get(f"/api/items/{i}/neighbors", headers={"X-Mirsim-Index": old_version})
    assert stale.status_code == 409 and "reload the page" in stale.json()["detail"]
    current = after.headers["x-mirsim-index"]
    assert client.get("/api/items/0", headers={"X-Mirsim-Index": current}).status_code == 200


def test_an_unloadable_replacement_keeps_the_old_index_in_service(index_dir, tmp_path,
                                                                   feature_cache):
    copy = tmp_path / "copy.index"
    shutil.copytree(index_dir, copy)
    client = TestClient(create_app(copy, cache=feature_cache), base_url=LOCAL)
    assert client.get("/api/info").json()["n_items"] == 19
    (copy / "manifest.csv").write_text("not,a\nmanifest,at all\n")  # a broken hand edit
    r = client.get("/api/info")
    assert r.status_code == 200 and r.json()["n_items"] == 19
    assert client.get("/api/items/3").status_code == 200


def test_a_real_server_on_a_wildcard_address_and_port_0(index_dir, library, tmp_path):
    """``mirsim serve --host 0.0.0.0 --port 0``: the port the system chose is printed, the Host
    check stays on, uploads from other sites are refused, HEAD works, 100 KB targets are
    refused by the HTTP server itself without an echo."""
    import httpx2 as httpx

    log = tmp_path / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", standalone_app.__module__, str(index_dir),
                                 "--host", "0.0.0.0", "--port", "0", "--map", "pca",
                                 "--allowed-host", "samples.lan"], stdout=err, stderr=err,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        port = _printed_port(proc, log)
        assert port > 0 and "listening on 0.0.0.0" in log.read_text()
        url = f"http://127.0.0.1:{port}"
        _wait_for(url)
        assert httpx.get(f"{url}/api/info", headers={"Host": "samples.lan"}).status_code == 200
        assert httpx.get(f"{url}/api/info", headers={"Host": "evil.example"}).status_code == 400
        r = httpx.head(f"{url}/api/items/0/audio")
        assert r.status_code == 200 and int(r.headers["content-length"]) > 1000
        with open(library / "dull" / "dull 0 ü#%.wav", "rb") as f:
            body = f.read()
        for origin, status in (("http://evil.example", 403), (url, 200)):
            r = httpx.post(f"{url}/api/query", headers={"Origin": origin},
                           files={"file": ("a.wav", body)}, timeout=60)
            assert r.status_code == status, r.text
        answer = _raw_get(port, "/api/search?q=" + "ECHO" * 25_000)  # 100 KB
        assert answer.startswith(b"HTTP/1.1 4") and b"ECHO" not in answer
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    assert "Traceback" not in log.read_text()


def _printed_port(proc: subprocess.Popen, log: Path, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"serving \S+ at http://0\.0\.0\.0:(\d+)/", log.read_text())
        if m:
            return int(m.group(1))
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    pytest.fail(f"no 'serving' line: {log.read_text()}")


def _wait_for(url: str, timeout: float = 60) -> None:
    import httpx2 as httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/api/info", timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"{url} not up")


def _raw_get(port: int, target: str) -> bytes:
    """The answer to a GET sent as raw bytes (client libraries refuse such long URLs)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                  .encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# -- several metrics of one library ------------------------------------------------------------
@pytest.fixture(scope="module")
def other_metric_dir(library, tmp_path_factory, feature_cache) -> Path:
    """The same library indexed with another metric (a random projection: other neighbours)."""
    out = tmp_path_factory.mktemp("server-index-2") / "random.index"
    SoundIndex.build(library, out, feature="random", n_jobs=1, cache=feature_cache)
    return out


def test_every_call_answers_for_the_metric_it_names(library, index_dir, other_metric_dir,
                                                    index, feature_cache):
    two = TestClient(create_app(index_dir, other_metrics=[other_metric_dir],
                                cache=feature_cache, map_settings=MapSettings(method="pca")),
                     base_url=LOCAL)
    served = two.get("/api/metrics").json()
    assert [m["name"] for m in served["metrics"]] == ["lib", "random"]
    assert served["default"] == "lib"
    assert [m["feature"] for m in served["metrics"]] == ["mfcc", "random"]
    other = SoundIndex.load(other_metric_dir)
    sound = library / str(index.manifest.at[0, "path"])
    answers = {}
    for name, idx in (("lib", index), ("random", other)):
        got = two.get("/api/items/0/neighbors", params={"k": 5, "metric": name}).json()
        expected = idx.query_audio(sound, k=5)  # = `mirsim query` on that index
        answers[name] = [n["path"] for n in got["neighbors"]]
        assert answers[name] == [n.relpath for n in expected.results]
    assert answers["lib"] != answers["random"]
    default = two.get("/api/items/0/neighbors", params={"k": 5}).json()
    assert default == two.get("/api/items/0/neighbors", params={"k": 5, "metric": "lib"}).json()
    assert two.get("/api/info", params={"metric": "random"}).json()["feature"] == "random"
    r = two.get("/api/info", params={"metric": "nope"})
    assert r.status_code == 404 and "served: lib, random" in r.json()["detail"]


def test_indexes_of_different_libraries_are_not_served_together(index_dir, tmp_path,
                                                                feature_cache):
    other = tmp_path / "other.index"
    write_synthetic_index(other, 10, n_labels=2)
    with pytest.raises(SoundIndexError, match="different libraries"):
        create_app(index_dir, other_metrics=[other], cache=feature_cache)
