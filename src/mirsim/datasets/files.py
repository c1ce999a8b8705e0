"""User data: a folder with one sub-folder per label, or a CSV manifest ``path,label[,group]``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mirsim.audio import FileSource
from mirsim.datasets.collection import Collection
from mirsim.errors import DataError

#: File endings read as audio when walking a folder.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


def list_audio_files(root: str | Path) -> list[Path]:
    """Audio files below ``root`` (recursive, sorted, hidden files skipped).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); _ = open(os.path.join(d, "a.WAV"), "w"), open(os.path.join(d, "b.txt"), "w")
    >>> [p.name for p in list_audio_files(d)]
    ['a.WAV']
    """
    root = Path(root)
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def load_folder(root: str | Path) -> Collection:
    """A collection from a folder whose sub-folders are labels.

    Each file is its own group. Files directly in ``root`` get the label of ``root``'s name.

    Raises
    ------
    DataError
        The folder does not exist or holds no audio file.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    files = list_audio_files(root)
    if not files:
        raise DataError(f"{root}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)})")
    rel = [p.relative_to(root) for p in files]
    items = pd.DataFrame({
        "id": [str(r) for r in rel],
        "label": [r.parts[0] if len(r.parts) > 1 else root.name for r in rel],
        "group": [str(r) for r in rel],
        "path": [str(p) for p in files],
    })
    return Collection(root.name, items, [FileSource(p) for p in files], f"folder {root}")


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
    csv_path = Path(csv_path)
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True,
                            skip_blank_lines=False)  # keep row index == line number - 2
    except FileNotFoundError as exc:
        raise DataError(f"{csv_path}: no such file") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{csv_path}: not a readable CSV manifest ({str(exc).strip()[:160]})") from exc
    except OSError as exc:  # a folder, no permission...
        raise DataError(f"{csv_path}: cannot read ({exc.strerror or exc})") from exc
    table.columns = [c.strip().lower() for c in table.columns]
    table = table[~(table.apply(lambda col: col.str.strip()) == "").all(axis=1)]  # blank lines
    missing = [c for c in ("path", "label") if c not in table.columns]
    if missing:
        raise DataError(f"{csv_path}: manifest needs columns path,label[,group]; "
                        f"missing {', '.join(missing)} (found: {', '.join(table.columns)})")
    if table.empty:
        raise DataError(f"{csv_path}: manifest has no rows")
    for col in ("path", "label") + (("group",) if "group" in table.columns else ()):
        empty = table.index[table[col].str.strip() == ""]
        if len(empty):
            raise DataError(f"{csv_path}: empty '{col}' on line {int(empty[0]) + 2}")
    paths = [Path(p) if Path(p).is_absolute() else csv_path.parent / p for p in table["path"]]
    items = table.rename(columns={"path": "manifest_path"}).copy()
    items.insert(0, "id", table["path"].values)
    if "group" not in items.columns:
        items["group"] = items["id"]
    items["path"] = [str(p) for p in paths]
    return Collection(csv_path.stem, items, [FileSource(p) for p in paths], f"manifest {csv_path}")
