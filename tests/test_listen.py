"""Listening tests: design from a seed, the answer database, export to ``--judgments``, the
web app (tokens, replays, sizes), a real ``mirsim listen serve`` killed with SIGKILL mid
session, and a simulated listener in headless Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from mirsim.experiments.judgments import load_judgments
from mirsim.listening.app import MAX_BODY_BYTES, create_listen_app, issue_links
from mirsim.listening.design import (ListeningTestError, design_test, load_test,
                                     sounds_of_data, uncertain_triplets, write_test)
from mirsim.listening.export import export_answers
from mirsim.listening.store import ANSWERS_FILE, AnswerStore, StoreError
from synthetic_audio import write_timbre_library

CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """9 sounds: three timbres x 3 pitches."""
    return write_timbre_library(tmp_path_factory.mktemp("listen") / "lib", 3)


def _test_dir(tmp_path: Path, library: Path, kind: str, **options) -> Path:
    sounds = sounds_of_data(str(library))
    test = design_test(kind, sounds["names"], sounds["paths"], **options)
    return write_test(test, tmp_path / kind)


def _client(test_dir: Path, **options) -> TestClient:
    return TestClient(create_listen_app(test_dir, **options), base_url="http://127.0.0.1")


# -- design ------------------------------------------------------------------------------------
def test_design_is_deterministic_from_the_seed(tmp_path: Path, library: Path):
    a = _test_dir(tmp_path / "a", library, "triplets", n=12, seed=7, listeners=["x", "y"])
    b = _test_dir(tmp_path / "b", library, "triplets", n=12, seed=7, listeners=["x", "y"])
    c = _test_dir(tmp_path / "c", library, "triplets", n=12, seed=8, listeners=["x", "y"])
    ta, tb, tc = load_test(a), load_test(b), load_test(c)
    assert ta.trials == tb.trials and ta.trials != tc.trials
    assert ta.order("y").tolist() == tb.order("y").tolist()
    assert len(ta.trials) == 12
    assert all(len({t["a"], t["b"], t["c"]}) == 3 for t in ta.trials)
    assert len({(t["a"], frozenset((t["b"], t["c"]))) for t in ta.trials}) == 12


def test_design_kinds_and_bad_input(tmp_path: Path, library: Path):
    sorting = load_test(_test_dir(tmp_path, library, "free-sorting", n=5, seed=1))
    assert len(sorting.trials) == 1 and len(sorting.trials[0]["items"]) == 5
    pairs = load_test(_test_dir(tmp_path, library, "pairwise", n=10, seed=1)).trials
    assert len({frozenset((p["a"], p["b"])) for p in pairs}) == 10
    with pytest.raises(ListeningTestError, match="unknown kind"):
        design_test("ranking", ["a", "b"], ["a", "b"])
    with pytest.raises(ListeningTestError, match="distinct"):
        design_test("pairwise", ["a", "b"], ["a", "b"], listeners=["x", "x"])
    with pytest.raises(ListeningTestError, match="already holds"):
        _test_dir(tmp_path, library, "pairwise")


def test_uncertain_triplets_are_the_smallest_margins():
    E = np.random.default_rng(0).normal(size=(30, 4))
    chosen = uncertain_triplets(E, 10, seed=0)
    d = lambda i, j: float(np.linalg.norm(E[i] - E[j]))  # noqa: E731
    margins = [abs(d(t["a"], t["b"]) - d(t["a"], t["c"])) for t in chosen]
    assert margins == sorted(margins) and max(margins) < 0.5
    assert uncertain_triplets(E, 10, seed=0) == chosen


def test_schema_version_and_wal(tmp_path: Path, library: Path):
    d = _test_dir(tmp_path, library, "triplets", n=3)
    with AnswerStore(d / ANSWERS_FILE) as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99"):
        AnswerStore(d / ANSWERS_FILE)


# -- the web app -------------------------------------------------------------------------------
def test_answer_is_in_the_database_when_the_post_returns(tmp_path: Path, library: Path):
    d = _test_dir(tmp_path, library, "triplets", n=4, listeners=["ann"])
    token = issue_links(d)["ann"]
    client = _client(d)
    session = client.get(f"/api/t/{token}/session").json()
    trial = session["next"]["id"]
    r = client.post(f"/api/t/{token}/answers",
                    json={"trial": trial, "answer": {"choice": "c", "confidence": 3}})
    assert r.status_code == 200 and r.json()["done"] == 1
    with AnswerStore(d / ANSWERS_FILE) as other:  # another connection sees it at once
        assert [(a["listener"], a["trial"], a["answer"]["choice"]) for a in other.answers()] == [
            ("ann", trial, "c")]
    # a listener coming back: progress from the database, next trial another one
    again = _client(d).get(f"/api/t/{token}/session").json()
    assert again["done"] == 1 and again["next"]["id"] != trial


def test_bad_token_replayed_answer_and_bad_answers_are_refused(tmp_path: Path, library: Path):
    d = _test_dir(tmp_path, library, "triplets", n=4, listeners=["ann"])
    token = issue_links(d)["ann"]
    client = _client(d)
    answer = {"trial": 0, "answer": {"choice": "b", "confidence": 1}}
    assert client.post(f"/api/t/{'x' * 32}/answers", json=answer).status_code == 403
    assert client.get(f"/t/{'x' * 32}").status_code == 403
    assert client.get(f"/api/t/{'x' * 32}/audio/0").status_code == 403
    assert client.post(f"/api/t/{token}/answers", json=answer).status_code == 200
    replay = client.post(f"/api/t/{token}/answers", json=answer)
    assert replay.status_code == 403 and "already answered" in replay.json()["detail"]
    for bad in ({"choice": "a", "confidence": 1}, {"choice": "b", "confidence": 9}, {}):
        assert client.post(f"/api/t/{token}/answers",
                           json={"trial": 1, "answer": bad}).status_code == 422
    assert client.post(f"/api/t/{token}/answers", json={"trial": 99, "answer": {
        "choice": "b", "confidence": 1}}).status_code == 404
    big = client.post(f"/api/t/{token}/answers", content=b"x" * (MAX_BODY_BYTES + 70_000),
                      headers={"Content-Type": "application/json"})
    assert big.status_code == 413
    assert client.post(f"/api/t/{token}/answers", json=answer,
                       headers={"Origin": "http://evil.example"}).status_code == 403
    assert _client(d).get(f"/api/t/{token}/session",
                          headers={"Host": "evil.example"}).status_code == 400
    # a new start issues new links: the old one stops working
    new = issue_links(d)["ann"]
    assert client.get(f"/api/t/{token}/session").status_code == 403
    assert client.get(f"/api/t/{new}/session").json()["done"] == 1
    with AnswerStore(d / ANSWERS_FILE) as store:  # only hashes are stored
        assert new not in str(store.db.execute("SELECT * FROM listeners").fetchall())


def test_audio_only_by_item_id(tmp_path: Path, library: Path):
    d = _test_dir(tmp_path, library, "pairwise", n=3, listeners=["ann"])
    token = issue_links(d)["ann"]
    client = _client(d)
    r = client.get(f"/api/t/{token}/audio/0")
    assert r.status_code == 200 and r.content[:4] == b"RIFF"
    assert client.get(f"/api/t/{token}/audio/9").status_code == 404
    assert client.get(f"/api/t/{token}/audio/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    page = client.get(f"/t/{token}")
    assert page.status_code == 200 and page.headers["X-Frame-Options"] == "DENY"


def test_two_listeners_answering_at_once(tmp_path: Path, library: Path):
    d = _test_dir(tmp_path, library, "pairwise", n=20, listeners=["ann", "bob"])
    links = issue_links(d)
    app = create_listen_app(d)
    errors: list[BaseException] = []

    def listener(token: str) -> None:
        try:
            client = TestClient(app, base_url="http://127.0.0.1")
            for trial in range(20):
                r = client.post(f"/api/t/{token}/answers",
                                json={"trial": trial, "answer": {"similarity": 0.5}})
                assert r.status_code == 200, r.text
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=listener, args=(t,)) for t in links.values()]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    with AnswerStore(d / ANSWERS_FILE) as store:
        answers = store.answers()
    assert len(answers) == 40
    assert {a["listener"] for a in answers} == {"ann", "bob"}


# -- export ------------------------------------------------------------------------------------
def test_export_triplets_round_trip(tmp_path: Path, library: Path):
    d = _test_dir(tmp_path, library, "triplets", n=3, listeners=["ann"])
    test = load_test(d)
    with AnswerStore(d / ANSWERS_FILE) as store:
        store.add_answer("ann", 0, {"choice": "c", "confidence": 3})
        store.add_answer("ann", 2, {"choice": "b", "confidence": 1})
    path, rows = export_answers(d, tmp_path / "out")
    assert rows == 2 and path == tmp_path / "out" / "triplets.csv"
    judged = load_judgments(path)
    t0, t2 = test.trials[0], test.trials[2]
    names = [[judged.fnames[i] for i in row] for row in judged.triplets]
    assert names == [[test.name_of(t0["a"]), test.name_of(t0["c"]), test.name_of(t0["b"])],
                     [test.name_of(t2["a"]), test.name_of(t2["b"]), test.name_of(t2["c"])]]
    assert judged.weights.tolist() == pytest.approx([1.0, 1 / 3])


def test_export_free_sorting_round_trip(tmp_path: Path, library: Path):
    d = _test_dir(tmp_path, library, "free-sorting", listeners=["ann", "bob"])
    token = issue_links(d)["ann"]
    client = _client(d)
    items = client.get(f"/api/t/{token}/session").json()["next"]["trial"]["items"]
    assert client.post(f"/api/t/{token}/answers", json={"trial": 0, "answer": {
        "groups": [items[:2]]}}).status_code == 422  # not every sound
    groups = [items[:3], items[3:]]
    assert client.post(f"/api/t/{token}/answers",
                       json={"trial": 0, "answer": {"groups": groups}}).status_code == 200
    path, rows = export_answers(d)
    assert path.name == "listener_groupings.csv" and rows == len(items)
    judged = load_judgments(path)
    assert judged.listeners == ("ann",)
    test = load_test(d)
    codes = dict(zip(judged.fnames, judged.groups[0].tolist()))
    assert {codes[test.name_of(i)] for i in items[:3]} != {codes[test.name_of(i)]
                                                           for i in items[3:]}
    assert len({codes[test.name_of(i)] for i in items[:3]}) == 1


# -- a real server, killed ---------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def listen_server(test_dir: Path, log: Path) -> Iterator[tuple[subprocess.Popen, dict]]:
    """``mirsim listen serve`` in a subprocess; yields it and the links it printed."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    with open(log, "ab") as err:
        proc = subprocess.Popen([sys.executable, "-m", "mirsim.cli", "listen", "serve",
                                 str(test_dir), "--port", str(port)], stdout=subprocess.PIPE,
                                stderr=err, env=env, text=True)
    try:
        links = {}
        test = load_test(test_dir)
        while len(links) < len(test.listeners):
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"server ended: {log.read_text()}")
            name, url = line.strip().split("\t")
            links[name] = url
        base = next(iter(links.values())).split("/t/")[0]
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield proc, links
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_kill_9_loses_no_committed_answer(tmp_path: Path, library: Path):
    d = _test_dir(tmp_path, library, "triplets", n=30, listeners=["ann"])
    with listen_server(d, tmp_path / "server.log") as (proc, links):
        base, token = links["ann"].split("/t/")
        committed = []
        for _ in range(12):
            session = httpx.get(f"{base}/api/t/{token}/session", timeout=10).json()
            trial = session["next"]["id"]
            r = httpx.post(f"{base}/api/t/{token}/answers", timeout=10,
                           json={"trial": trial, "answer": {"choice": "b", "confidence": 2}})
            assert r.status_code == 200
            committed.append(trial)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with AnswerStore(d / ANSWERS_FILE) as store:
        assert store.answered("ann") == committed
    # and a restarted server carries on with a new link
    with listen_server(d, tmp_path / "server2.log") as (_, links):
        base, token = links["ann"].split("/t/")
        assert httpx.get(f"{base}/api/t/{token}/session", timeout=10).json()["done"] == 12


# -- a simulated listener in headless Chromium ---------------------------------------------------
@pytest.fixture(scope="module")
def chrome():
    if not CHROMEDRIVER.exists() or shutil.which("chromium") is None:
        pytest.skip("chromium and chromedriver are not installed")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def test_browser_triplet_session(tmp_path: Path, library: Path, chrome):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = _test_dir(tmp_path, library, "triplets", n=3, listeners=["ann"])
    with listen_server(d, tmp_path / "server.log") as (_, links):
        chrome.get(links["ann"])
        wait = WebDriverWait(chrome, 20)
        wait.until(lambda c: c.find_element(By.ID, "start").is_displayed())
        chrome.find_element(By.ID, "start").click()
        for k in range(3):
            wait.until(lambda c: c.find_element(By.ID, "triplets").is_displayed())
            chrome.find_element(By.CSS_SELECTOR, "#triplets .play[data-slot='a']").click()
            chrome.find_element(By.CSS_SELECTOR, "input[name='choice'][value='c']").click()
            chrome.find_element(By.CSS_SELECTOR, "input[name='confidence'][value='2']").click()
            chrome.find_element(By.ID, "submit").click()
            wait.until(lambda c, k=k: f"{k + 1} of 3" in c.find_element(By.ID, "progress").text)
        wait.until(lambda c: c.find_element(By.ID, "finished").is_displayed())
        severe = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE"
                  and "Content Security Policy" in e["message"]]
        assert not severe
    with AnswerStore(d / ANSWERS_FILE) as store:
        answers = store.answers()
    assert len(answers) == 3 and {a["answer"]["choice"] for a in answers} == {"c"}


def _timbre(test, item: int) -> str:
    """The timbre of a sound of the library: its folder."""
    return Path(test.items[item]["path"]).parent.name


def _report_cli(test_dir: Path) -> str:
    """``mirsim listen export`` then ``mirsim report`` on a test; the page's text."""
    from typer.testing import CliRunner

    from mirsim.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["listen", "export", str(test_dir)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", str(test_dir)])
    assert r.exit_code == 0, r.output
    assert (test_dir / "report.html").is_file()
    return (test_dir / "report.html").read_text()


def _drag(chrome, canvas, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at ``start`` on the canvas (canvas pixels), move to ``end``, release."""
    from selenium.webdriver.common.action_chains import ActionChains

    width, height, shown = chrome.execute_script(
        "const c = arguments[0]; return [c.width, c.height, c.getBoundingClientRect().width];",
        canvas)
    scale = shown / width  # CSS pixels per canvas pixel

    def offset(p: tuple[float, float]) -> tuple[int, int]:  # from the centre, CSS pixels
        return round((p[0] - width / 2) * scale), round((p[1] - height / 2) * scale)

    x0, y0 = offset(start)
    x1, y1 = offset(end)
    (ActionChains(chrome).move_to_element_with_offset(canvas, x0, y0).click_and_hold()
     .move_by_offset((x1 - x0) // 2, (y1 - y0) // 2).move_by_offset(x1 - x0 - (x1 - x0) // 2,
                                                                     y1 - y0 - (y1 - y0) // 2)
     .release().perform())


def _sort_in_browser(chrome, url: str, group_of) -> None:
    """A listener who drags the sounds into groups (``group_of(item)``: its group number),
    one column per group, then submits."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chrome.get(url)
    wait = WebDriverWait(chrome, 20)
    wait.until(lambda c: c.find_element(By.ID, "start").is_displayed())
    chrome.find_element(By.ID, "start").click()
    wait.until(lambda c: c.find_element(By.ID, "sorting").is_displayed())
    canvas = chrome.find_element(By.ID, "board")
    discs = chrome.execute_script("return window.mirsimListen.state.discs.map("
                                  "d => [d.item, d.x, d.y]);")
    placed: dict[int, int] = {}
    for item, x, y in discs:
        group = group_of(item)
        k = placed.get(group, 0)
        placed[group] = k + 1
        _drag(chrome, canvas, (x, y), (150 + 300 * group, 250 + 30 * k))
    wait.until(lambda c: f"{len(placed)} group(s)" in c.find_element(By.ID, "n-groups").text)
    chrome.find_element(By.ID, "submit").click()
    wait.until(lambda c: c.find_element(By.ID, "finished").is_displayed())


def test_browser_free_sorting_session_export_and_report(tmp_path: Path, library: Path, chrome):
    from sklearn.metrics import adjusted_rand_score

    d = _test_dir(tmp_path, library, "free-sorting", listeners=["ann", "bob"])
    test = load_test(d)
    timbres = sorted({_timbre(test, i) for i in range(len(test.items))})
    by_timbre = lambda item: timbres.index(_timbre(test, item))  # noqa: E731
    by_pitch = lambda item: int(Path(test.items[item]["path"]).stem.split()[-1])  # noqa: E731
    chrome.set_window_size(1280, 1000)
    with listen_server(d, tmp_path / "server.log") as (_, links):
        _sort_in_browser(chrome, links["ann"], by_timbre)
        _sort_in_browser(chrome, links["bob"], by_pitch)
    with AnswerStore(d / ANSWERS_FILE) as store:
        answers = {a["listener"]: a["answer"]["groups"] for a in store.answers()}
    items = test.trials[0]["items"]
    for listener, rule in (("ann", by_timbre), ("bob", by_pitch)):
        assert sorted(map(sorted, answers[listener])) == sorted(
            sorted(i for i in items if rule(i) == g) for g in {rule(i) for i in items})
    page = _report_cli(d)
    assert (d / "listener_groupings.csv").is_file()
    ari = adjusted_rand_score([by_timbre(i) for i in items], [by_pitch(i) for i in items])
    assert f"{ari:.3f} ± 0.000 over 1 pair(s) of listeners" in page
    assert "Groups per listener" in page and (d / "report-groups.png").is_file()


def test_browser_free_sorting_board_holds_every_sound(tmp_path: Path, chrome):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    library = write_timbre_library(tmp_path / "lib", 30)  # 90 sounds: more rows than 560 px
    d = _test_dir(tmp_path, library, "free-sorting", listeners=["ann"])
    chrome.set_window_size(1280, 1600)
    with listen_server(d, tmp_path / "server.log") as (_, links):
        chrome.get(links["ann"])
        wait = WebDriverWait(chrome, 20)
        wait.until(lambda c: c.find_element(By.ID, "start").is_displayed())
        chrome.find_element(By.ID, "start").click()
        wait.until(lambda c: c.find_element(By.ID, "sorting").is_displayed())
        height, discs = chrome.execute_script(
            "const s = window.mirsimListen.state; return [document.getElementById('board')"
            ".height, s.discs.map(d => [d.item, d.x, d.y])];")
        assert len(discs) == 90 and height > 560
        assert all(16 <= y <= height - 16 for _, _, y in discs)
        assert "90 group(s)" in chrome.find_element(By.ID, "n-groups").text
        first, last = discs[0], discs[-1]  # the last row's disc can be dragged to the first,
        target = (first[1] - 20, first[2] - 20)  # in the corner, away from the first's neighbours
        _drag(chrome, chrome.find_element(By.ID, "board"), last[1:], target)
        wait.until(lambda c: "89 group(s)" in c.find_element(By.ID, "n-groups").text)


def test_browser_pairwise_session_export_and_report(tmp_path: Path, library: Path, chrome):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    d = _test_dir(tmp_path, library, "pairwise", n=4, listeners=["ann", "bob"])
    test = load_test(d)
    same = lambda t: _timbre(test, t["a"]) == _timbre(test, t["b"])  # noqa: E731
    slider = {"ann": (90, 10), "bob": (70, 30)}  # (same timbre, different timbres), of 100
    with listen_server(d, tmp_path / "server.log") as (_, links):
        for listener, (alike, unlike) in slider.items():
            chrome.get(links[listener])
            wait = WebDriverWait(chrome, 20)
            wait.until(lambda c: c.find_element(By.ID, "start").is_displayed())
            chrome.find_element(By.ID, "start").click()
            for k in range(4):
                wait.until(lambda c: c.find_element(By.ID, "pairwise").is_displayed())
                trial = chrome.execute_script("return window.mirsimListen.state.trial.trial;")
                chrome.find_element(By.CSS_SELECTOR, "#pairwise .play[data-slot='b']").click()
                value = alike if same(trial) else unlike
                chrome.find_element(By.ID, "similarity").send_keys(
                    Keys.HOME, *([Keys.ARROW_RIGHT] * value))
                chrome.find_element(By.ID, "submit").click()
                wait.until(lambda c, k=k: f"{k + 1} of 4" in c.find_element(By.ID,
                                                                            "progress").text)
            wait.until(lambda c: c.find_element(By.ID, "finished").is_displayed())
    with AnswerStore(d / ANSWERS_FILE) as store:
        answers = store.answers()
    assert len(answers) == 8
    for a in answers:
        alike, unlike = slider[a["listener"]]
        expected = alike if same(test.trials[a["trial"]]) else unlike
        assert a["answer"]["similarity"] == pytest.approx(expected / 100)
    page = _report_cli(d)
    assert (d / "pairwise.csv").read_text().count("\n") == 9
    assert "Mean rating per pair" in page
    assert {same(t) for t in test.trials} == {True, False}  # seed 0: both kinds of pair,
    assert "1.000 ± 0.000 over 1 pair(s) of listeners" in page  # ranked alike by both


# -- the command line ----------------------------------------------------------------------------
def test_cli_design_active_from_an_index_and_export(tmp_path: Path):
    from typer.testing import CliRunner

    from mirsim.cli import app
    from mirsim.index import SoundIndex
    from mirsim.server.synthetic import write_synthetic_index

    index = write_synthetic_index(tmp_path / "s.index", 40, n_labels=3)
    runner = CliRunner()
    r = runner.invoke(app, ["listen", "design", "--index", str(index), "--kind", "triplets",
                            "--n", "5", "--active", "--listeners", "a,b", "--out",
                            str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    test = load_test(tmp_path / "t")
    assert test.selection == "uncertain" and len(test.trials) == 5
    manifest = SoundIndex.load(index).manifest
    assert test.name_of(0) == manifest.at[0, "path"]
    bad = runner.invoke(app, ["listen", "design", "--data", "x", "--kind", "pairwise",
                              "--active", "--out", str(tmp_path / "u")])
    assert bad.exit_code == 2 and "--active" in bad.output
    r = runner.invoke(app, ["listen", "export", str(tmp_path / "t")])
    assert r.exit_code == 0 and "triplets.csv: 0 row(s)" in r.output


def test_a_consensus_of_listeners_is_closer_to_the_published_one_than_any_listener(
        cyberlioz_dir):
    from sklearn.metrics import adjusted_rand_score

    from mirsim.datasets.listeners import read_listener_groupings
    from mirsim.listening.analysis import consensus_partition, read_partition

    g = read_listener_groupings(cyberlioz_dir / "listener_clusters.csv")
    published = read_partition(cyberlioz_dir / "clusters.csv", g.fnames)
    consensus = consensus_partition(g.groups, len(np.unique(published)))
    assert len(np.unique(consensus)) == len(np.unique(published)) == 19
    ensemble = adjusted_rand_score(published, consensus)
    alone = [adjusted_rand_score(published, listener) for listener in g.groups]
    assert ensemble > max(alone) + 0.05 and ensemble > 0.4
    # listeners who agree give their partition back, whatever their codes
    same = np.array([[0, 0, 1, 1, 2], [5, 5, 3, 3, 4], [1, 1, 0, 0, 2]])
    assert consensus_partition(same, 3).tolist() == [0, 0, 1, 1, 2]


def test_true_rates_have_wilson_intervals():
    from mirsim.errors import MirsimError
    from mirsim.listening.analysis import true_rate

    p, n, z = 0.75, 40, 1.959964  # Wilson's interval written out
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    r = true_rate(30, 40)
    assert r.rate == 0.75 and r.n == 40
    assert r.low == pytest.approx(centre - half, abs=1e-6)
    assert r.high == pytest.approx(centre + half, abs=1e-6)
    assert true_rate(0, 5).low == 0.0 and true_rate(5, 5).high == pytest.approx(1.0)
    for bad in ((6, 5), (0, 0), (-1, 5)):
        with pytest.raises(MirsimError):
            true_rate(*bad)


def test_consensus_command_writes_the_partition_and_compares_it(cyberlioz_dir, tmp_path):
    from typer.testing import CliRunner

    from mirsim.cli import app

    out = tmp_path / "consensus.csv"
    r = CliRunner().invoke(app, ["listen", "consensus", "--judgments",
                                 str(cyberlioz_dir / "listener_clusters.csv"), "--clusters",
                                 "19", "--compare", str(cyberlioz_dir / "clusters.csv"),
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "adjusted Rand index against clusters.csv: 0." in r.output
    lines = out.read_text().splitlines()
    assert lines[0] == "fname,cluster" and len(lines) == 79
    for bad in (["--clusters", "0"], ["--clusters", "19", "--linkage", "ward"],
                ["--clusters", "19", "--compare", str(out.parent / "none.csv")]):
        r = CliRunner().invoke(app, ["listen", "consensus", "--judgments",
                                     str(cyberlioz_dir / "listener_clusters.csv"), *bad])
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, bad


def test_cli_design_contrast_sets_two_metrics_of_one_library_against_each_other(
        tmp_path: Path, feature_cache):
    """The per-instrument paper's procedure over two indexes: every positive is among the
    anchor's two nearest by the first metric, every negative among its two nearest by the
    second, and no anchor has a sound in both lists."""
    from scipy.spatial.distance import cdist
    from typer.testing import CliRunner

    from mirsim.cli import app
    from mirsim.index import SoundIndex
    from mirsim.server.synthetic import write_synthetic_index

    from synthetic_audio import write_timbre_library

    library = write_timbre_library(tmp_path / "lib", 5)
    first, second = tmp_path / "mfcc.index", tmp_path / "random.index"
    a = SoundIndex.build(library, first, feature="mfcc", n_jobs=1, cache=feature_cache)
    b = SoundIndex.build(library, second, feature="random", n_jobs=1, cache=feature_cache)
    assert list(a.manifest["path"]) == list(b.manifest["path"])
    r = CliRunner().invoke(app, ["listen", "design", "--index", str(first), "--contrast-index",
                                 str(second), "--kind", "triplets", "--n", "6", "--out",
                                 str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    test = load_test(tmp_path / "t")
    assert test.selection == "contrast" and 1 <= len(test.trials) <= 6

    def top2(E, i):
        d = cdist(E[i:i + 1], E, a.distance)[0]
        d[i] = np.inf
        return set(np.argsort(d, kind="stable")[:2].tolist())

    Ea, Eb = np.asarray(a.embeddings), np.asarray(b.embeddings)
    for t in test.trials:
        negative = "c" if t["positive"] == "b" else "b"
        assert t[t["positive"]] in top2(Ea, t["a"]) and t[negative] in top2(Eb, t["a"])
        assert not top2(Ea, t["a"]) & top2(Eb, t["a"])
    assert {t["positive"] for t in test.trials} <= {"b", "c"}

    other = write_synthetic_index(tmp_path / "other.index", 30, n_labels=4)
    bad = CliRunner().invoke(app, ["listen", "design", "--index", str(first), "--contrast-index",
                                   str(other), "--kind", "triplets", "--out",
                                   str(tmp_path / "u")])
    assert bad.exit_code == 2 and "another library" in bad.output
