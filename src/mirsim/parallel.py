"""Worker processes: the one joblib configuration of every parallel step of mirsim.

Fold training (:mod:`mirsim.evaluation.protocols`) and feature extraction
(:mod:`mirsim.features.extraction`) run their tasks in joblib's loky worker processes, through
:func:`worker_processes`. It sets two things that joblib's defaults get wrong for a command
that may be killed:

* **Workers end with their parent.** loky keeps idle workers for 300 s and never notices that
  its parent was killed (``kill -9``): the workers (about 1 GB each once torch is loaded) stayed
  alive for as long as anyone looked, and with them loky's resource tracker and the files it
  is meant to delete. Each worker therefore starts a watchdog thread (loky's ``initializer``
  hook) that ends the worker within :data:`WATCHDOG_INTERVAL` seconds of its parent's death,
  seen as the worker's parent process id changing (a dead parent's children are re-parented).
  Once the workers are gone, loky's resource tracker sees its last client leave and deletes
  the semaphores and folders it was tracking (in ``/dev/shm``), then ends too.
  (``prctl(PR_SET_PDEATHSIG)`` was not used: Linux only, and it fires when the *thread* that
  started the worker ends, which for loky may be a helper thread of a live parent.)
* **numba's cache is written by one process.** librosa compiles many of its functions with
  numba when its modules are imported and caches the machine code on disk. Processes that
  compile and write that cache at the same moment (several fresh workers importing librosa
  for the first time) interleave its index and data files, and every later process that loads
  the mixed-up cache crashes with a segmentation fault inside numba (seen here as
  ``librosa.feature.chroma_cens`` and ``librosa.yin`` crashing; reproduced with four processes
  importing librosa at once into an empty cache, three times out of three; chroma_cens dies in
  its tuning estimate, in ``piptrack``'s parabolic interpolation, a gufunc of
  ``librosa.core.pitch``, and not with ``tuning=0.0``, which skips it). So the parent
  imports those modules itself (:func:`warm_numba_caches`, under a file lock) before any
  worker starts, and the workers only read the complete cache.
* **No memory-mapped copies of arguments.** joblib memory-maps array arguments above 1 MB into
  ``/dev/shm`` (or the temporary folder) for the workers to share. mirsim's arguments are small
  (a feature matrix of tens of MB at most, lists of audio sources), so they are pickled to the
  workers instead (``max_nbytes=None``), and a killed run cannot leave such copies behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from joblib import Parallel

#: Seconds between two checks of a worker's watchdog that its parent is alive.
WATCHDOG_INTERVAL = 0.5

#: librosa modules whose numba functions are compiled (and cached) when they are imported.
NUMBA_MODULES = ("librosa.util.utils", "librosa.core.audio", "librosa.core.pitch",
                 "librosa.core.spectrum", "librosa.feature", "librosa.onset", "librosa.beat",
                 "librosa.sequence", "librosa.util.matching")


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def warm_numba_caches(modules: Sequence[str] = NUMBA_MODULES) -> None:
    """Import the librosa modules that compile numba functions, one process at a time.

    The first call in an environment compiles them and writes numba's cache (a minute or two
    of CPU); later calls, in this process or any other, only load it. The file lock (in
    mirsim's cache directory) keeps two mirsim processes from writing the cache together.

    Examples
    --------
    >>> warm_numba_caches(["librosa.util.utils"])
    >>> import sys; "librosa.util.utils" in sys.modules
    True
    """
    if all(m in __import__("sys").modules for m in modules):
        return
    from mirsim.config import cache_dir

    try:
        lock = _exclusive(cache_dir() / "locks" / "numba-cache.lock")
        lock.__enter__()
    except OSError:  # no writable cache directory: import without the lock
        lock = None
    try:
        for module in modules:
            importlib.import_module(module)
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)


def worker_processes(n_jobs: int) -> Parallel:
    """A joblib ``Parallel`` of ``n_jobs`` loky worker processes that end with this process,
    yielding results in order as they come (``return_as="generator"``).

    Parameters
    ----------
    n_jobs : int
        Worker processes (joblib's convention: ``-1`` for one per core).

    Returns
    -------
    joblib.Parallel
        Call it with an iterable of ``joblib.delayed`` tasks.

    Examples
    --------
    >>> from joblib import delayed
    >>> list(worker_processes(2)(delayed(pow)(i, 2) for i in range(4)))
    [0, 1, 4, 9]
    """
    if n_jobs != 1:
        warm_numba_caches()
    return Parallel(n_jobs=n_jobs, backend="loky", return_as="generator", max_nbytes=None,
                    initializer=_start_parent_watchdog, initargs=(os.getpid(),))


def _start_parent_watchdog(parent_pid: int, interval: float = WATCHDOG_INTERVAL) -> None:
    """Start a daemon thread that ends this process as soon as its parent ``parent_pid`` is
    gone (at once if it already is): the initializer of mirsim's worker processes.

    ``parent_pid`` comes from the parent, so that a parent that died before the worker got
    here is noticed too.
    """
    threading.Thread(target=_watch_parent, args=(parent_pid, interval),
                     name="mirsim-parent-watchdog", daemon=True).start()


def _watch_parent(parent_pid: int, interval: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(1)  # nothing to clean up: the work belonged to the dead parent
