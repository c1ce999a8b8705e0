"""The design of a listening test: which sounds, which trials, which listeners.

A test directory holds ``test.json`` (written here) and ``answers.sqlite``
(:mod:`mirsim.listening.store`). ``test.json`` names the test's ``kind`` and lists its items
(``id``: the position used in every URL and trial; ``name``: the sound's id in judgment files,
e.g. an index's manifest path or a data set's item id; ``path``: its audio file) and its trials:

* ``free-sorting``: one trial, the whole item set, to be sorted into any number of groups;
* ``triplets``: ``{"a", "b", "c"}`` — which of B and C sounds more like A? — three different
  items drawn at random (or, with embeddings, the triplets a model is least sure about:
  :func:`uncertain_triplets`);
* ``pairwise``: ``{"a", "b"}`` — how similar are they? — distinct pairs drawn at random.

Every draw goes through one seed: the same seed and items give the same test. Each listener
meets the trials in an order of their own (:meth:`ListeningTest.order`), drawn from the same
seed and their position in the list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.artefacts.files import read_json_object, write_json
from mirsim.errors import MirsimError

__all__ = ["KINDS", "FORMAT_VERSION", "ListeningTest", "ListeningTestError",
           "contrast_triplets", "design_test", "draw_pairs", "draw_triplets", "load_test",
           "shuffle_slots", "sounds_of_data", "sounds_of_index", "uncertain_triplets",
           "write_test"]

#: Kinds of test.
KINDS = ("free-sorting", "triplets", "pairwise")
#: Version of the ``test.json`` layout.
FORMAT_VERSION = 1
TEST_FILE = "test.json"
#: Random triplets scored per triplet kept by :func:`uncertain_triplets`.
CANDIDATES_PER_TRIPLET = 20
#: Most sounds :func:`contrast_triplets` takes (it holds two full distance matrices).
MAX_CONTRAST_ITEMS = 5000


class ListeningTestError(MirsimError):
    """A test that cannot be designed or read as it is."""


@dataclass
class ListeningTest:
    """A listening test: its kind, items, trials and listeners (the content of ``test.json``).

    Examples
    --------
    >>> t = ListeningTest("triplets", [{"id": i, "name": f"s{i}", "path": f"/s{i}.wav"}
    ...                                for i in range(4)], [{"a": 0, "b": 1, "c": 2}], ["ann"])
    >>> t.name_of(2), t.order("ann").tolist()
    ('s2', [0])
    """

    kind: str
    items: list[dict[str, Any]]
    trials: list[dict[str, Any]]
    listeners: list[str]
    seed: int = 0
    source: str = ""
    selection: str = "random"
    extra: dict[str, Any] = field(default_factory=dict)

    def name_of(self, item: int) -> str:
        """The judgment-file name of item ``item``."""
        return str(self.items[item]["name"])

    def order(self, listener: str) -> np.ndarray:
        """The order in which ``listener`` meets the trials (their own permutation)."""
        number = self.listeners.index(listener)
        return np.random.default_rng([self.seed, number]).permutation(len(self.trials))

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "kind": self.kind, "seed": self.seed,
                "source": self.source, "selection": self.selection,
                "listeners": list(self.listeners), "items": self.items, "trials": self.trials,
                **self.extra}


def draw_triplets(n_items: int, n: int, seed: int) -> list[dict[str, int]]:
    """``n`` distinct triplets of three different items, drawn at random.

    Examples
    --------
    >>> draw_triplets(5, 2, seed=0) == draw_triplets(5, 2, seed=0)
    True
    >>> all(len({t["a"], t["b"], t["c"]}) == 3 for t in draw_triplets(5, 20, seed=1))
    True
    """
    _need_items(n_items, 3, "triplets")
    limit = n_items * (n_items - 1) * (n_items - 2) // 2  # (a, {b, c}) up to the order of b, c
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, frozenset[int]]] = set()
    triplets: list[dict[str, int]] = []
    while len(triplets) < min(n, limit):
        a, b, c = (int(x) for x in rng.choice(n_items, 3, replace=False))
        if (a, frozenset((b, c))) not in seen:
            seen.add((a, frozenset((b, c))))
            triplets.append({"a": a, "b": b, "c": c})
    return triplets


def uncertain_triplets(embeddings: np.ndarray, n: int, seed: int,
                       distance: str = "euclidean") -> list[dict[str, Any]]:
    """The ``n`` triplets a model is least sure about: of ``20 n`` random triplets, those with
    the smallest ``|d(a, b) - d(a, c)|`` under ``embeddings`` (each with that ``margin``).

    Examples
    --------
    >>> E = np.array([[0.0], [1.0], [-1.0], [5.0]])
    >>> t = uncertain_triplets(E, 1, seed=0)
    >>> t[0]["a"], sorted((t[0]["b"], t[0]["c"])), t[0]["margin"]
    (0, [1, 2], 0.0)
    """
    E = np.asarray(embeddings, dtype=np.float64)
    if distance == "cosine":
        E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    pool = draw_triplets(len(E), CANDIDATES_PER_TRIPLET * n, seed)
    abc = np.array([[t["a"], t["b"], t["c"]] for t in pool])
    d_ab = np.linalg.norm(E[abc[:, 0]] - E[abc[:, 1]], axis=1)
    d_ac = np.linalg.norm(E[abc[:, 0]] - E[abc[:, 2]], axis=1)
    margin = np.abs(d_ab - d_ac)
    keep = np.argsort(margin, kind="stable")[:n]
    return [{**pool[i], "margin": round(float(margin[i]), 6)} for i in keep]


def shuffle_slots(sets: Sequence[Mapping[str, int]], rng: np.random.Generator
                   ) -> list[dict[str, Any]]:
    """Listening sets ``{"a", "b": positive, "c": negative}`` with the positive moved to slot
    C in about half of them, at random; ``positive`` names its slot.

    Examples
    --------
    >>> t = shuffle_slots([{"a": 0, "b": 1, "c": 2}] * 20, np.random.default_rng(0))
    >>> sorted({x["positive"] for x in t}), all(x[x["positive"]] == 1 for x in t)
    (['b', 'c'], True)
    """
    trials = []
    for s, swap in zip(sets, rng.random(len(sets)) < 0.5):
        positive, negative = ("c", "b") if swap else ("b", "c")
        trials.append({"a": s["a"], positive: s["b"], negative: s["c"], "positive": positive})
    return trials


def contrast_triplets(positive: np.ndarray, negative: np.ndarray, n: int, seed: int, *,
                      top: int = 2, distance: str = "euclidean") -> list[dict[str, Any]]:
    """Triplets that set two metrics against each other, by the per-instrument paper's
    procedure: the positive among the anchor's ``top`` nearest by the ``positive`` embeddings
    (say, a drums metric), the negative among its ``top`` nearest by the ``negative`` ones
    (the mix metric); an anchor whose two lists overlap gives no triplet
    (:func:`mirsim.evaluation.per_instrument.listening_sets`). The positive goes to slot B or
    C at random (:func:`shuffle_slots`); a listener's answer then says which metric they
    followed.

    Examples
    --------
    >>> P = np.array([[0.0], [0.1], [5.0], [5.1]])   # 0~1, 2~3
    >>> N = np.array([[0.0], [5.0], [0.1], [5.1]])   # 0~2, 1~3
    >>> t = contrast_triplets(P, N, 2, seed=0, top=1)
    >>> sorted((x["a"], x[x["positive"]]) for x in t)
    [(0, 1), (2, 3)]
    """
    from scipy.spatial.distance import cdist

    from mirsim.evaluation.per_instrument import listening_sets

    P, N = (np.asarray(E, dtype=np.float64) for E in (positive, negative))
    if len(P) != len(N):
        raise ListeningTestError(f"the two metrics embed different numbers of sounds "
                                 f"({len(P)} and {len(N)})")
    _need_items(len(P), top + 2, "contrast triplets")
    if len(P) > MAX_CONTRAST_ITEMS:
        raise ListeningTestError(f"contrast triplets compare every pair of sounds: at most "
                                 f"{MAX_CONTRAST_ITEMS:,} (got {len(P):,})")
    metric = "cosine" if distance == "cosine" else "euclidean"
    sets = listening_sets(cdist(P, P, metric), cdist(N, N, metric), n, top, seed)
    return shuffle_slots(sets, np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]))


def draw_pairs(n_items: int, n: int, seed: int) -> list[dict[str, int]]:
    """``n`` distinct pairs of different items, drawn at random (every pair if ``n`` is
    larger than their number).

    Examples
    --------
    >>> draw_pairs(3, 10, seed=0) == draw_pairs(3, 10, seed=0), len(draw_pairs(3, 10, seed=0))
    (True, 3)
    """
    _need_items(n_items, 2, "pairs")
    pairs = list(combinations(range(n_items), 2))
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(pairs))[:n]
    return [{"a": int(a), "b": int(b)} if rng.random() < 0.5 else {"a": int(b), "b": int(a)}
            for a, b in (pairs[i] for i in chosen)]


def _need_items(n_items: int, k: int, what: str) -> None:
    if n_items < k:
        raise ListeningTestError(f"{what} need at least {k} sounds (got {n_items})")


def design_test(kind: str, names: Sequence[str], paths: Sequence[str | Path], *,
                n: int | None = None, seed: int = 0, listeners: Sequence[str] = ("L01",),
                embeddings: np.ndarray | None = None, distance: str = "euclidean",
                source: str = "", contrast: np.ndarray | None = None) -> ListeningTest:
    """A test of ``kind`` over the sounds ``names`` (files ``paths``).

    Parameters
    ----------
    kind : {"free-sorting", "triplets", "pairwise"}
    names, paths : sequences of the same length
        The sounds' names in judgment files and their audio files.
    n : int, optional
        Trials (triplets, pairwise; default 50), or sounds drawn for free sorting (default:
        all of them).
    seed : int
    listeners : sequence of str
        Listener names (distinct).
    embeddings : array of shape (len(names), d), optional
        With ``kind="triplets"``: choose the triplets these embeddings are least sure about,
        or, with ``contrast``, the positives by them (:func:`contrast_triplets`).
    contrast : array of shape (len(names), d'), optional
        With ``embeddings``: another metric's embeddings, which choose the negatives.
    distance : {"euclidean", "cosine"}
    source : str
        What the sounds come from (recorded in ``test.json``).

    Examples
    --------
    >>> t = design_test("pairwise", ["a", "b", "c"], ["/a.wav", "/b.wav", "/c.wav"], n=2)
    >>> t.kind, len(t.trials), t.items[1]
    ('pairwise', 2, {'id': 1, 'name': 'b', 'path': '/b.wav'})
    """
    if kind not in KINDS:
        raise ListeningTestError(f"unknown kind of test '{kind}' (valid: {', '.join(KINDS)})")
    listeners = _check_listeners(listeners)
    if n is not None and n < 1:
        raise ListeningTestError(f"--n must be at least 1 (got {n})")
    if len(set(names)) != len(names):
        raise ListeningTestError("two sounds have the same name")
    items = [{"id": i, "name": str(name), "path": str(path)}
             for i, (name, path) in enumerate(zip(names, paths))]
    selection = "random"
    if kind == "free-sorting":
        _need_items(len(items), 2, "free sorting")
        chosen = np.random.default_rng(seed).permutation(len(items))[:n or len(items)]
        trials = [{"items": sorted(int(i) for i in chosen)}]
    elif kind == "pairwise":
        trials = draw_pairs(len(items), n or 50, seed)
    elif embeddings is not None and contrast is not None:
        trials = contrast_triplets(embeddings, contrast, n or 50, seed, distance=distance)
        selection = "contrast"
    elif embeddings is not None:
        trials, selection = uncertain_triplets(embeddings, n or 50, seed, distance), "uncertain"
    else:
        trials = draw_triplets(len(items), n or 50, seed)
    return ListeningTest(kind, items, trials, listeners, seed, source, selection)


def _check_listeners(listeners: Sequence[str]) -> list[str]:
    names = [str(x).strip() for x in listeners]
    if not names or any(not x for x in names):
        raise ListeningTestError("--listeners: give at least one name, none empty")
    if len(set(names)) != len(names):
        raise ListeningTestError("--listeners: names must be distinct")
    if any(len(x) > 100 or not x.isprintable() or "," in x for x in names):
        raise ListeningTestError("--listeners: a name is printable, without commas, at most "
                                 "100 characters")
    return names


def write_test(test: ListeningTest, out: str | Path) -> Path:
    """Write ``test.json`` of ``test`` into the directory ``out`` and create its answer
    database; refuses a directory that already holds a test (its answers would be lost).

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()) / "t"
    >>> t = design_test("triplets", list("abcd"), list("abcd"), n=3, seed=1)
    >>> write_test(t, d).name, sorted(p.name for p in d.iterdir())
    ('t', ['answers.sqlite', 'test.json'])
    >>> load_test(d).trials == t.trials
    True
    """
    from mirsim.listening.store import ANSWERS_FILE, AnswerStore

    out = Path(out)
    if (out / TEST_FILE).exists() or (out / ANSWERS_FILE).exists():
        raise ListeningTestError(f"{out}: already holds a listening test (choose another --out)")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / TEST_FILE, test.to_json(), durable=True)
    AnswerStore.create(out / ANSWERS_FILE, test).close()
    return out


def is_test_directory(path: str | Path) -> bool:
    """Whether ``path`` holds a listening test (the ``test.json`` that :func:`load_test`
    reads).

    Examples
    --------
    >>> is_test_directory("no/such/test")
    False
    """
    return (Path(path) / TEST_FILE).is_file()


def load_test(directory: str | Path) -> ListeningTest:
    """The test of a test directory (see :func:`write_test`)."""
    doc = read_json_object(Path(directory) / TEST_FILE, ListeningTestError)
    try:
        if doc["format"] != FORMAT_VERSION or doc["kind"] not in KINDS:
            raise ListeningTestError(f"{directory}: test.json of another version or kind")
        known = {"format", "kind", "seed", "source", "selection", "listeners", "items", "trials"}
        return ListeningTest(doc["kind"], list(doc["items"]), list(doc["trials"]),
                             list(doc["listeners"]), int(doc["seed"]), str(doc["source"]),
                             str(doc["selection"]),
                             {k: v for k, v in doc.items() if k not in known})
    except (KeyError, TypeError, ValueError) as exc:
        raise ListeningTestError(f"{directory}/{TEST_FILE}: not a listening test ({exc})") from None


# -- where the sounds come from ---------------------------------------------------------------
def sounds_of_index(index_dir: str | Path) -> dict[str, Any]:
    """Names (manifest paths), files, embeddings and distance of an index's sounds."""
    from mirsim.index import SoundIndex

    index = SoundIndex.load(index_dir)
    names = [str(p) for p in index.manifest["path"]]
    return {"names": names, "paths": [str(Path(index.root) / p) for p in names],
            "embeddings": np.asarray(index.embeddings), "distance": index.distance,
            "source": str(index_dir)}


def sounds_of_data(data: str) -> dict[str, Any]:
    """Names (item ids) and files of a data set, folder or CSV manifest."""
    from mirsim.datasets import load_collection

    collection = load_collection(data)
    paths = [getattr(s, "path", None) for s in collection.sources]
    if any(p is None for p in paths):
        raise ListeningTestError(f"{data}: its sounds are not audio files (a listening test "
                                 f"plays files; index them or write them out first)")
    return {"names": collection.items["id"].astype(str).tolist(),
            "paths": [str(p) for p in paths], "embeddings": None, "distance": "euclidean",
            "source": data}
