"""Worker processes end with their parent: ``kill -9`` of a command leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf
from joblib import delayed
from synthetic_audio import SR, TIMBRES, harmonic_tone, write_timbre_library

from mirsim.parallel import worker_processes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /dev/shm and kills processes the Linux way")

SHM = Path("/dev/shm")


def _parent_pid() -> int:
    return os.getppid()


def test_workers_run_tasks_in_other_processes_that_know_their_parent():
    results = list(worker_processes(2)(delayed(_parent_pid)() for _ in range(4)))
    assert results == [os.getpid()] * 4  # workers are this process's children


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _loky_workers(parent: psutil.Process) -> list[psutil.Process]:
    return [p for p in parent.children(recursive=True) if "popen_loky_posix" in _cmdline(p)]


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def _shm_files_of(pid: int) -> list[str]:
    """joblib's memmapping folders and loky's semaphores are named after the parent's pid."""
    if not SHM.is_dir():
        return []
    return sorted(n for n in os.listdir(SHM) if f"_{pid}_" in n or f"-{pid}-" in n)


def _kill_when_workers_run(cmd: list[str], tmp_path: Path, settle: float) -> None:
    """Start ``cmd``, wait for its two loky workers, ``kill -9`` it, and check that every
    process it started and every file it put in /dev/shm or the temporary folder is gone."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "MIRSIM_CACHE_DIR": str(tmp_path / "cache"), "TMPDIR": str(tmp)}
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    parent = psutil.Process(proc.pid)
    started = []
    try:
        deadline = time.monotonic() + 180
        while len(_loky_workers(parent)) < 2:
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
            assert time.monotonic() < deadline, "no two worker processes after 180 s"
            time.sleep(0.1)
        time.sleep(settle)
        started = parent.children(recursive=True)  # workers and loky's resource trackers
        assert proc.poll() is None, "the command ended before it could be killed"
        assert len(_alive(_loky_workers(parent))) == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while (_alive(started) or _shm_files_of(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _alive(started) == [], "processes outlived their killed parent"
        assert _shm_files_of(proc.pid) == []
        assert list(tmp.iterdir()) == []
    finally:  # on failure: workers first, so that loky's trackers delete their files and end
        for group in ([p for p in started if "popen_loky_posix" in _cmdline(p)], started):
            for p in _alive(group):
                p.kill()
            psutil.wait_procs(group, timeout=5)


@pytest.mark.slow
def test_killed_train_leaves_no_worker_processes_or_files(tmp_path):
    lib = write_timbre_library(tmp_path / "lib", n_pitches=8)
    _kill_when_workers_run(
        [sys.executable, "-m", "mirsim.cli", "train", "--data", str(lib), "--feature", "mfcc",
         "--model", "mlp", "-p", "epochs=3000", "--protocol", "kfold", "--folds", "4",
         "--workers", "2", "--jobs", "2", "--runs", str(tmp_path / "runs")],
        tmp_path, settle=2.0)


@pytest.mark.slow
def test_killed_index_build_leaves_no_worker_processes_or_files(tmp_path):
    lib = tmp_path / "lib"
    for label, n_harmonics in TIMBRES:
        (lib / label).mkdir(parents=True)
        for i, f in enumerate(np.geomspace(200, 400, 60)):
            sf.write(lib / label / f"{i}.wav", np.tile(harmonic_tone(f, n_harmonics, i), 4), SR)
    _kill_when_workers_run(
        [sys.executable, "-m", "mirsim.cli", "index", "build", str(lib), "--out",
         str(tmp_path / "lib.index"), "--feature", "mfcc", "--workers", "2"],
        tmp_path, settle=0.0)
