"""The ``soundtracks`` data set: recorded game music that Debian packages under free licences,
with its tempo and key estimated.

Real music, not rendered: the music of Debian's ``wesnoth-1.16-music`` (orchestral pieces of
The Battle for Wesnoth, GPL-2+) and ``supertux-data`` (SuperTux's tracks, mostly CC-BY-SA and
GPL). The files are the package's own (found with ``dpkg-query -L``: audio files under a
``music`` folder), read in place; nothing is copied.

* ``label`` = ``soundtrack``: the game (the package) a piece belongs to — two composers' sets
  of very different styles, the coarse "genre" of this set;
* ``tempo`` and ``key`` = estimated from the audio (:func:`~mirsim.features.tempo_key.
  estimated_tempo_key`: beat tracking and Krumhansl–Kessler key profiles over the first
  ``analysed`` seconds), so they are labels with errors — on the ``grooves`` songs, whose truth
  is known, the same estimates got the tempo within 5 BPM for 79 % of the songs and the key
  exactly for 62 % (``benchmarks/bench_tempo_key.py``). A piece the estimate cannot read
  (silent, corrupt) keeps no tempo or key and is in no triplet of those dimensions;
* ``licence`` = the ``License:`` fields of the package's ``copyright`` file, so that a user
  knows what they may do with a clip;
* ``group`` = the piece: clips of one piece (``segments``) are never split across folds.

Needs ``apt-get install wesnoth-1.16-music supertux-data`` (``scripts/install_debian_data.sh``
installs them); without either package a one-line error says so.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mirsim.audio import FileSource
from mirsim.datasets.base import Dataset
from mirsim.datasets.collection import Collection
from mirsim.datasets.dimensions import Dimension
from mirsim.errors import DataError
from mirsim.params import Interval, Nullable, Options, estimator, param
from mirsim.registries import DATASETS

#: Debian package -> the name of its soundtrack (the ``soundtrack`` label).
PACKAGES = {"wesnoth-1.16-music": "wesnoth", "supertux-data": "supertux"}

INSTALL = "apt-get install " + " ".join(PACKAGES)

#: Audio files taken from a package.
AUDIO_SUFFIXES = (".ogg", ".flac", ".wav", ".mp3")

#: What the dimension triplets of this set compare.
DIMENSIONS = (Dimension("soundtrack", "same-label"), Dimension("tempo", "tempo"),
              Dimension("key", "key"))


def package_files(package: str, needed_by: str = "the soundtracks data set",
                  install: str = INSTALL) -> list[Path]:
    """The files a Debian package installed, from ``dpkg-query -L``.

    ``needed_by`` and ``install`` (the ``apt-get`` command) make the error message.

    Raises
    ------
    DataError
        The package is not installed (the message gives the ``apt-get`` command), or there is
        no ``dpkg-query`` (not a Debian system).
    """
    try:
        r = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True,
                           check=False)
    except FileNotFoundError:
        raise DataError(f"{needed_by} reads Debian packages; no dpkg-query here "
                        f"(needs: {install})") from None
    if r.returncode != 0:
        raise DataError(f"{needed_by} needs the Debian package {package}: {install}")
    return [Path(line) for line in r.stdout.splitlines() if line.strip()]


def music_files(files: Sequence[str | Path]) -> list[Path]:
    """The audio files under a folder named ``music``, sorted.

    Examples
    --------
    >>> music_files(["/usr/share/game/music/b.ogg", "/usr/share/game/music/a.ogg",
    ...              "/usr/share/game/sounds/hit.ogg", "/usr/share/game/music/README"])
    [PosixPath('/usr/share/game/music/a.ogg'), PosixPath('/usr/share/game/music/b.ogg')]
    """
    return sorted(Path(f) for f in files
                  if "music" in Path(f).parent.parts and Path(f).suffix.lower() in AUDIO_SUFFIXES)


def piece_name(path: str | Path) -> str:
    """A piece's name: its path under the (last) ``music`` folder, without the suffix.

    Examples
    --------
    >>> piece_name("/usr/share/games/supertux2/music/antarctic/airship_2.ogg")
    'antarctic/airship_2'
    """
    parts = Path(path).with_suffix("").parts
    last = len(parts) - 1 - parts[::-1].index("music")
    return "/".join(parts[last + 1:])


def copyright_licences(text: str, files_word: str = "music") -> str | None:
    r"""The licences a Debian ``copyright`` file gives to the files of ``files_word``.

    In the machine-readable format, the ``License:`` names of the stanzas whose ``Files:``
    patterns mention ``files_word`` (or, if none does, of the ``Files: *`` stanza; if there is
    none, of every stanza), distinct, in order, joined by ``"; "``. ``None`` for a free-text
    file without ``License:`` names.

    Examples
    --------
    >>> copyright_licences("Files: *\nLicense: GPL-3+\n\nFiles: data/music/*\n"
    ...                    "License: GPL-2+\n\nFiles: data/images/*\nLicense: CC0-1.0")
    'GPL-2+'
    >>> copyright_licences("Files: *\nLicense: Artistic-1.0\n\nFiles: src/sha1.*\n"
    ...                    "License: Expat")
    'Artistic-1.0'
    >>> copyright_licences("Files: *\nLicense: GPL-2+\n\nLicense: GPL-2+\n text of it")
    'GPL-2+'
    >>> copyright_licences("This package is free software.") is None
    True
    """
    stanzas = [s for s in re.split(r"\n\s*\n", text) if s.strip()]

    def licence(stanza: str) -> str | None:
        m = re.search(r"^License:[ \t]*(\S[^\n]*)$", stanza, re.M)
        return m.group(1).strip() if m else None

    def files(stanza: str) -> str:
        m = re.search(r"^Files:(.*(?:\n[ \t]+.*)*)", stanza, re.M)
        return m.group(1) if m else ""

    chosen = [licence(s) for s in stanzas if files_word in files(s)]
    if not any(chosen):
        chosen = [licence(s) for s in stanzas if files(s).split() == ["*"]]
    if not any(chosen):
        chosen = [licence(s) for s in stanzas]
    names = [n for n in chosen if n]
    return "; ".join(dict.fromkeys(names)) or None


def package_licence(package: str, doc_root: Path = Path("/usr/share/doc")) -> str:
    """The licence of a package's music, from its ``copyright`` file; where the file is free
    text, where to read it."""
    path = doc_root / package / "copyright"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown (no copyright file)"
    return copyright_licences(text) or f"see {path}"


def soundtrack_items(packages: Sequence[str] = tuple(PACKAGES),
                     limit: int | None = None) -> pd.DataFrame:
    """One row per piece of music of ``packages`` (at most ``limit`` per package): ``id``
    (``<soundtrack>/<piece_name>``), ``label`` and ``soundtrack``, ``group``, ``path``,
    ``package``, ``licence``.

    Raises
    ------
    DataError
        A package is not installed or has no music files.
    """
    rows = []
    for package in packages:
        if package not in PACKAGES:
            raise DataError(f"unknown soundtrack package '{package}' "
                            f"(valid: {', '.join(PACKAGES)})")
        files = [f for f in music_files(package_files(package)) if f.is_file()]
        if not files:
            raise DataError(f"the Debian package {package} has no music files installed")
        licence, name = package_licence(package), PACKAGES[package]
        for f in files[:limit]:
            piece = f"{name}/{piece_name(f)}"
            rows.append({"id": piece, "label": name, "group": piece, "soundtrack": name,
                         "path": str(f), "package": package, "licence": licence})
    return pd.DataFrame(rows)


def interleaved_pieces(items: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """The first ``n`` pieces (all with ``None``) of :func:`soundtrack_items` taken from the
    soundtracks in turn (first of each, then second of each...), so that a subset holds both
    games' music rather than one game's; then in the item order.

    Examples
    --------
    >>> items = pd.DataFrame({"id": ["w/a", "w/b", "w/c", "s/x"],
    ...                       "soundtrack": ["w", "w", "w", "s"]})
    >>> interleaved_pieces(items, 3)["id"].tolist()
    ['w/a', 's/x', 'w/b']
    """
    rank = items.groupby("soundtrack", sort=False).cumcount()
    order = sorted(range(len(items)), key=lambda i: (rank.iloc[i], i))
    return items.iloc[order[:n]].reset_index(drop=True)


def load_soundtracks(packages: Sequence[str] = tuple(PACKAGES), limit: int | None = None,
                     estimate: bool = True, analysed: float | None = 60.0,
                     n_jobs: int = 1, cache=None) -> Collection:
    """The pieces of music of ``packages``, with estimated ``tempo`` and ``key`` columns
    (``estimate``; the first ``analysed`` seconds, or all of a piece with ``None``; cached
    with the features).

    Without ``estimate`` the collection declares only the ``soundtrack`` dimension.
    """
    from mirsim.features.tempo_key import estimated_tempo_key

    items = soundtrack_items(packages, limit)
    sources = [FileSource(p) for p in items["path"]]
    dimensions = list(DIMENSIONS) if estimate else [DIMENSIONS[0]]
    if estimate:
        tempi, keys, _ = estimated_tempo_key(sources, n_jobs=n_jobs, cache=cache,
                                             duration=analysed)
        items["tempo"], items["key"] = tempi, keys
    names = " and ".join(PACKAGES[p] for p in packages)
    what = "; tempo and key estimated" if estimate else ""
    return Collection("soundtracks", items, sources,
                      f"soundtracks: {len(items)} pieces of game music ({names}) from Debian "
                      f"packages (label = soundtrack{what})", dimensions=dimensions)


@DATASETS.register
@estimator
class SoundtracksDataset(Dataset):
    """Recorded game music from Debian packages (Wesnoth, SuperTux): soundtrack, and tempo
    and key estimated from the audio."""

    name = "soundtracks"
    limit: int | None = param(None, Nullable(Interval(int, 1, None)),
                              "pieces per soundtrack (none: all)")
    estimate: bool = param(True, Options((True, False)), "estimate tempo and key (the tempo and key dimensions)")
    analysed: float | None = param(60.0, Nullable(Interval(float, 0, None, closed="neither")),
                                   "seconds of a piece the estimates read (none: all)")
    segments: int = param(1, Interval(int, 1, None),
                          "3 s clips per piece (50 % overlap); 1: the piece is one item")

    def load(self) -> Collection:
        from mirsim.datasets.clips import clip_collection

        pieces = load_soundtracks(limit=self.limit, estimate=self.estimate,
                                  analysed=self.analysed)
        return pieces if self.segments == 1 else clip_collection(pieces, self.segments)


__all__ = ["DIMENSIONS", "INSTALL", "PACKAGES", "copyright_licences", "interleaved_pieces",
           "load_soundtracks",
           "music_files", "package_files", "piece_name", "package_licence", "soundtrack_items"]
