"""User data: a folder with one sub-folder per label, or a CSV manifest ``path,label[,group]``.

A folder is walked by :func:`walk_library`, the one walk of a library that ``mirsim train
--data FOLDER`` and ``mirsim index build`` share, and an item's label is :func:`label_of` in
both. The walk:

* lists the audio files (by extension: :data:`AUDIO_EXTENSIONS`, any case) at any depth,
  sorted; hidden files and folders (a name starting with ``.``) are left out;
* follows symbolic links, to files and to folders, and lists a file under the path of the link
  (so its label is the link's folder); a real folder is walked once, however many links lead
  to it: a link to a folder already walked, a link back to a folder that contains it (a loop)
  and a chain of links that never ends are not walked, so a walk always ends;
* reports what it could not use, with a reason: dangling links, loops, links to a folder
  already walked, folders it may not read, audio-named entries that are not regular files.
  ``train`` writes them to the run's ``skipped.json``, ``index build`` to its build report.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mirsim.audio import FileSource
from mirsim.errors import DataError

if TYPE_CHECKING:  # the walk is on the query path, which must not import pandas
    from mirsim.datasets.collection import Collection

#: File endings read as audio when walking a folder.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


@dataclass
class LibraryWalk:
    """What :func:`walk_library` found below a folder.

    Attributes
    ----------
    root : Path
        The folder walked.
    files : list of Path
        Audio files, sorted, as paths below ``root`` (through links, not resolved).
    skipped : list of dict
        ``{"path", "reason"}`` for each entry that could not be used; ``path`` is relative to
        ``root`` (POSIX form), sorted.
    """

    root: Path
    files: list[Path] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def walk_library(root: str | Path) -> LibraryWalk:
    """Audio files below ``root`` and what could not be used, with reasons (see the module's
    description for the rules).

    Written here rather than with ``os.walk(followlinks=True)`` or ``Path.rglob``: neither
    detects symlink loops nor reports dangling links.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); os.mkdir(os.path.join(d, "kick"))
    >>> _ = open(os.path.join(d, "kick", "a.WAV"), "w"), open(os.path.join(d, "b.txt"), "w")
    >>> os.symlink("gone.wav", os.path.join(d, "kick", "b.wav"))
    >>> os.symlink("..", os.path.join(d, "kick", "up"))
    >>> w = walk_library(d)
    >>> [p.relative_to(d).as_posix() for p in w.files]
    ['kick/a.WAV']
    >>> [(s["path"], s["reason"].split(" (")[0]) for s in w.skipped]
    [('kick/b.wav', 'dangling symlink'), ('kick/up', 'symlink loop')]
    """
    root = Path(root)
    walk = LibraryWalk(root)
    try:
        top = os.stat(root)
    except OSError as exc:
        raise DataError(f"{root}: cannot read ({exc.strerror or exc})") from exc
    walked = {(top.st_dev, top.st_ino): PurePosixPath(".")}
    pending = [(root, PurePosixPath("."), frozenset(walked))]  # folder, its path, its ancestors
    while pending:
        folder, rel, ancestors = pending.pop()
        try:
            with os.scandir(folder) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            walk.skipped.append({"path": rel.as_posix(),
                                 "reason": f"cannot read folder ({exc.strerror or exc})"})
            continue
        for entry in listed:
            if entry.name.startswith("."):
                continue
            path, entry_rel = Path(entry.path), rel / entry.name
            try:
                st = os.stat(path)  # follows links
            except OSError as exc:
                if entry.is_symlink():
                    walk.skipped.append({"path": entry_rel.as_posix(),
                                         "reason": _broken_link_reason(path, exc)})
                continue
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    walk.skipped.append({"path": entry_rel.as_posix(), "reason":
                                         f"symlink loop (leads back to "
                                         f"{_folder_name(walked[key])}, which contains it)"})
                elif key in walked:
                    walk.skipped.append({"path": entry_rel.as_posix(), "reason":
                                         f"symlink to a folder already listed as "
                                         f"{_folder_name(walked[key])}"})
                else:
                    walked[key] = entry_rel
                    pending.append((path, entry_rel, ancestors | {key}))
            elif entry.name.lower().endswith(AUDIO_EXTENSIONS):
                if stat.S_ISREG(st.st_mode):
                    walk.files.append(path)
                else:
                    walk.skipped.append({"path": entry_rel.as_posix(),
                                         "reason": "not a regular file (a pipe or a device?)"})
    walk.files.sort()
    walk.skipped.sort(key=lambda s: s["path"])
    return walk


def _broken_link_reason(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop (a chain of links that never reaches a file)"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"dangling symlink (its target {target} does not exist)"
    return f"symlink that cannot be followed ({exc.strerror or exc})"


def _folder_name(rel: PurePosixPath) -> str:
    return "the library folder" if rel == PurePosixPath(".") else rel.as_posix()


def list_audio_files(root: str | Path) -> list[Path]:
    """Audio files below ``root``: :func:`walk_library`'s ``files``.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); _ = open(os.path.join(d, "a.WAV"), "w"), open(os.path.join(d, "b.txt"), "w")
    >>> [p.name for p in list_audio_files(d)]
    ['a.WAV']
    """
    return walk_library(root).files


def label_of(relpath: str, root_name: str) -> str:
    """The label of a file of a library folder: the first sub-folder below the root on its
    path (``root_name``, the library folder's own name, for files directly in it).

    The one rule of ``mirsim train --data FOLDER`` and ``mirsim index build``.

    Examples
    --------
    >>> label_of("strings/violin/a4.wav", "lib"), label_of("a4.wav", "lib")
    ('strings', 'lib')
    >>> label_of("bad/folder.wav/inside.mp3", "lib")
    'bad'
    """
    parts = PurePosixPath(relpath).parts
    return parts[0] if len(parts) > 1 else root_name


def load_folder(root: str | Path) -> Collection:
    """A collection from a folder whose sub-folders are labels (:func:`label_of`).

    Each file is its own group. What the walk could not use (:func:`walk_library`) is in the
    collection's ``skipped``. A flat folder (every sound directly in it, no sub-folder) has no
    labels: the collection is unlabelled (``labelled`` False, every label ``None``), for
    self-supervised models.

    Raises
    ------
    DataError
        The folder does not exist or holds no audio file.
    """
    import pandas as pd

    from mirsim.datasets.collection import Collection

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    walk = walk_library(root)
    files = walk.files
    if not files:
        skipped = f"; skipped {len(walk.skipped)}, e.g. {walk.skipped[0]['path']}: " \
                  f"{walk.skipped[0]['reason']}" if walk.skipped else ""
        raise DataError(f"{root}: no audio files found (looked for "
                        f"{', '.join(AUDIO_EXTENSIONS)}){skipped}")
    rel = [p.relative_to(root).as_posix() for p in files]
    labelled = any(len(PurePosixPath(r).parts) > 1 for r in rel)
    items = pd.DataFrame({
        "id": rel,
        "label": [label_of(r, root.name) if labelled else None for r in rel],
        "group": rel,
        "path": [str(p) for p in files],
    })
    skipped = [{"id": s["path"], "source": str(root / s["path"]), "reason": s["reason"]}
               for s in walk.skipped]
    description = f"folder {root}" if labelled else f"folder {root} (no sub-folders: no labels)"
    return Collection(root.name, items, [FileSource(p) for p in files], description,
                      skipped=skipped, labelled=labelled)


def read_csv_table(csv_path: Path, kind: str = "manifest"):
    """The rows of a CSV file as strings (column names stripped and lower-cased, blank lines
    left out, the row index still ``line number - 2``).

    Raises
    ------
    DataError
        No such file, not readable, or not a CSV (one line naming the file).
    """
    import pandas as pd

    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True,
                            skip_blank_lines=False)  # keep row index == line number - 2
    except FileNotFoundError as exc:
        raise DataError(f"{csv_path}: no such file") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{csv_path}: not a readable CSV {kind} "
                        f"({str(exc).strip()[:160]})") from exc
    except OSError as exc:  # a folder, no permission...
        raise DataError(f"{csv_path}: cannot read ({exc.strerror or exc})") from exc
    table.columns = [c.strip().lower() for c in table.columns]
    return table[~(table.apply(lambda col: col.str.strip()) == "").all(axis=1)]  # blank lines


def require_values(table, csv_path: Path, columns) -> None:
    """Raise ``DataError`` naming the first line where one of ``columns`` is empty."""
    for col in columns:
        empty = table.index[table[col].str.strip() == ""]
        if len(empty):
            raise DataError(f"{csv_path}: empty '{col}' on line {int(empty[0]) + 2}")


def load_manifest(csv_path: str | Path) -> Collection:
    """A collection from a CSV with columns ``path,label[,group]`` (other columns kept).

    Relative paths are relative to the CSV's folder. Without ``group`` each row is its own group.

    Raises
    ------
    DataError
        Unreadable CSV, missing columns, empty values, or no rows. The message names the file
        (and the row, for empty values).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "m.csv")
    >>> _ = open(p, "w").write("path,label\\na.wav,x\\nb.wav,y\\n")
    >>> load_manifest(p).items[["id", "label", "group"]].values.tolist()
    [['a.wav', 'x', 'a.wav'], ['b.wav', 'y', 'b.wav']]
    """
    from mirsim.datasets.collection import Collection

    csv_path = Path(csv_path)
    table = read_csv_table(csv_path, "manifest")
    missing = [c for c in ("path", "label") if c not in table.columns]
    if missing:
        raise DataError(f"{csv_path}: manifest needs columns path,label[,group]; "
                        f"missing {', '.join(missing)} (found: {', '.join(table.columns)})")
    if table.empty:
        raise DataError(f"{csv_path}: manifest has no rows")
    require_values(table, csv_path,
                   ("path", "label") + (("group",) if "group" in table.columns else ()))
    paths = [Path(p) if Path(p).is_absolute() else csv_path.parent / p for p in table["path"]]
    items = table.rename(columns={"path": "manifest_path"}).copy()
    items.insert(0, "id", table["path"].values)
    if "group" not in items.columns:
        items["group"] = items["id"]
    items["path"] = [str(p) for p in paths]
    return Collection(csv_path.stem, items, [FileSource(p) for p in paths], f"manifest {csv_path}")
