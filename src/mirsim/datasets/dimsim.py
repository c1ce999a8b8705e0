"""The data of the multi-dimensional similarity papers: the Dim-sim triplets (Lee et al.,
ICASSP 2020) and Million Song Dataset audio with Last.fm tags grouped into dimensions.

Neither is available here: the Dim-sim CSV and the MSD audio are distributed by their
authors (the audio under licence); these loaders read them in the formats the authors
publish, and are tested on small files written in exactly those formats
(``tests/fixtures/dimsim``).

Dim-sim
-------
A CSV with the columns :data:`DIMSIM_COLUMNS`, one row per triplet: an anchor clip and two
other clips (track id = MSD track id, start in seconds and in samples, one clip length), and
the listeners' votes for the clip more similar to the anchor. :func:`dimsim_triplets` turns
it into clip items (id ``TRACKID@START_SAMPLES``, group = track) and judged triplets
``(anchor, positive, negative, agreement)``: positive = the clip with more votes, agreement
= its share of the votes. A tie says nothing and is dropped. :func:`clean_triplets` keeps the
triplets with at least 90 % agreement (the "clean" file of the paper).

MSD and Last.fm tags
--------------------
A folder of audio named by MSD track id (``TRXXXX.mp3``, at any depth) and a tags CSV
``track_id,tag,count`` (Last.fm's tag counts, 0-100). :data:`TAG_DIMENSIONS` assigns tags to
the dimensions genre, mood, instrument and era; a track's value in a dimension is the set of
its tags of that dimension with a count of at least ``min_count``, so each is a
``shared-tag`` dimension (tracks alike when they share a tag).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mirsim.audio import ClipSource, FileSource
from mirsim.datasets.collection import Collection
from mirsim.datasets.dimensions import Dimension
from mirsim.datasets.files import AUDIO_EXTENSIONS, read_csv_table, walk_library
from mirsim.errors import DataError

__all__ = ["DIMSIM_COLUMNS", "TAG_DIMENSIONS", "clean_triplets", "dimsim_triplets",
           "load_dimsim", "load_msd_tags"]

#: The columns of the Dim-sim triplet file, in order.
DIMSIM_COLUMNS = ("triplet_id", "anchor_id", "anchor_start_seconds", "anchor_start_samples",
                  "song1_id", "song1_start_seconds", "song1_start_samples", "song2_id",
                  "song2_start_seconds", "song2_start_samples", "sampling_rate",
                  "clip_lengths_seconds", "clip_lengths_samples", "song1_vote", "song2_vote")

#: Agreement of the "clean" Dim-sim triplets.
CLEAN_AGREEMENT = 0.9

#: Last.fm tag -> dimension (after Lee et al.'s four dimensions; tags compared in lower case).
TAG_DIMENSIONS: Mapping[str, str] = {
    **dict.fromkeys(("rock", "pop", "alternative", "indie", "electronic", "dance", "jazz",
                     "metal", "hip-hop", "hip hop", "rap", "soul", "rnb", "funk", "blues",
                     "country", "folk", "punk", "reggae", "classical", "ambient", "house",
                     "techno", "electronica", "hard rock", "indie rock", "alternative rock",
                     "heavy metal", "punk rock", "experimental", "soundtrack", "latin"),
                    "genre"),
    **dict.fromkeys(("chill", "chillout", "mellow", "happy", "sad", "beautiful", "sexy",
                     "party", "relaxing", "melancholy", "melancholic", "romantic", "love",
                     "catchy", "energetic", "aggressive", "dark", "upbeat", "calm", "fun"),
                    "mood"),
    **dict.fromkeys(("guitar", "piano", "instrumental", "female vocalists", "male vocalists",
                     "female vocalist", "male vocalist", "acoustic", "electric guitar",
                     "saxophone", "violin", "synth", "drums", "vocal", "strings"),
                    "instrument"),
    **dict.fromkeys(("50s", "60s", "70s", "80s", "90s", "00s", "oldies", "1950s", "1960s",
                     "1970s", "1980s", "1990s", "2000s"), "era"),
}


# -- Dim-sim ----------------------------------------------------------------------------------
def _read_dimsim(csv_path: Path) -> pd.DataFrame:
    table = read_csv_table(csv_path, "Dim-sim file")
    missing = [c for c in DIMSIM_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{csv_path}: a Dim-sim file needs the columns "
                        f"{','.join(DIMSIM_COLUMNS)}; missing {', '.join(missing)}")
    if table.empty:
        raise DataError(f"{csv_path}: Dim-sim file has no rows")
    numeric = [c for c in DIMSIM_COLUMNS if not c.endswith("_id") or c == "triplet_id"]
    out = table.copy()
    for column in numeric:
        values = pd.to_numeric(out[column], errors="coerce")
        bad = out.index[values.isna()]
        if len(bad):
            raise DataError(f"{csv_path}: line {int(bad[0]) + 2}: '{column}' is not a number "
                            f"({out.loc[bad[0], column]!r})")
        out[column] = values
    return out


def _clip_ids(table: pd.DataFrame, role: str) -> pd.Series:
    return table[f"{role}_id"].str.strip() + "@" + \
        table[f"{role}_start_samples"].astype(np.int64).astype(str)


def dimsim_triplets(csv_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The clips and the judged triplets of a Dim-sim file.

    Returns
    -------
    clips : pandas.DataFrame
        One row per distinct clip: ``id`` (``TRACKID@START_SAMPLES``), ``track_id``,
        ``start_seconds``, ``start_samples``, ``length_seconds``, ``length_samples``,
        ``sampling_rate``; in order of first appearance (row by row: anchor, song 1, song 2).
    triplets : pandas.DataFrame
        ``triplet_id``, ``anchor``, ``positive``, ``negative`` (clip ids) and ``agreement``
        (the positive's share of the votes, 0.5 < agreement <= 1); ties are dropped.

    Raises
    ------
    DataError
        Not a Dim-sim file (a column missing, a number that is not one, no rows).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "dimsim.csv")
    >>> _ = open(p, "w").write(",".join(DIMSIM_COLUMNS) + "\\n"
    ...                        "7,TRA,1.0,22050,TRB,0.0,0,TRC,2.0,44100,22050,3.0,66150,1,9\\n")
    >>> clips, triplets = dimsim_triplets(p)
    >>> clips["id"].tolist(), triplets.values.tolist()
    (['TRA@22050', 'TRB@0', 'TRC@44100'], [[7, 'TRA@22050', 'TRC@44100', 'TRB@0', 0.9]])
    """
    csv_path = Path(csv_path)
    table = _read_dimsim(csv_path)
    frames = []
    for n, role in enumerate(("anchor", "song1", "song2")):
        frames.append(pd.DataFrame({
            "order": np.arange(len(table)) * 3 + n, "id": _clip_ids(table, role), "track_id": table[f"{role}_id"].str.strip(),
            "start_seconds": table[f"{role}_start_seconds"].astype(float),
            "start_samples": table[f"{role}_start_samples"].astype(np.int64),
            "length_seconds": table["clip_lengths_seconds"].astype(float),
            "length_samples": table["clip_lengths_samples"].astype(np.int64),
            "sampling_rate": table["sampling_rate"].astype(np.int64)}))
    clips = (pd.concat(frames, ignore_index=True).sort_values("order").drop_duplicates("id")
             .drop(columns="order").reset_index(drop=True))
    votes1, votes2 = table["song1_vote"].astype(float), table["song2_vote"].astype(float)
    first = votes1 > votes2
    decided = (votes1 != votes2).to_numpy()
    song1, song2 = _clip_ids(table, "song1"), _clip_ids(table, "song2")
    triplets = pd.DataFrame({
        "triplet_id": table["triplet_id"].astype(np.int64),
        "anchor": _clip_ids(table, "anchor"),
        "positive": np.where(first, song1, song2), "negative": np.where(first, song2, song1),
        "agreement": np.maximum(votes1, votes2) / (votes1 + votes2)})
    return clips, triplets[decided].reset_index(drop=True)


def clean_triplets(triplets: pd.DataFrame, min_agreement: float = CLEAN_AGREEMENT) -> pd.DataFrame:
    """The triplets with at least ``min_agreement`` of the votes (the paper's "clean" set: 90 %).

    Examples
    --------
    >>> t = pd.DataFrame({"anchor": ["a", "b"], "positive": ["p", "q"], "negative": ["n", "m"],
    ...                   "agreement": [0.95, 0.6]})
    >>> clean_triplets(t)["anchor"].tolist()
    ['a']
    """
    return triplets[triplets["agreement"] >= min_agreement - 1e-12].reset_index(drop=True)


def _audio_by_track(audio_root: Path) -> dict[str, Path]:
    """MSD track id (the file name's stem) -> audio file, for the files below a folder."""
    return {p.stem: p for p in walk_library(audio_root).files}


def load_dimsim(csv_path: str | Path, audio_root: str | Path | None = None,
                min_agreement: float | None = None) -> Collection:
    """The Dim-sim clips as a collection with their judged triplets.

    Parameters
    ----------
    csv_path : path
        The Dim-sim triplet CSV.
    audio_root : path, optional
        A folder of MSD audio named by track id (``TRXXXX.mp3``...); a clip whose track has no
        file there is listed in ``skipped`` and its triplets are dropped. Without it the
        clips have no audio (sources ``None``).
    min_agreement : float, optional
        Keep only triplets with this agreement (0.9: :func:`clean_triplets`).

    Returns
    -------
    Collection
        Items = clips (``label`` None: unlabelled; ``group`` = track id); ``triplets`` with
        columns ``anchor``, ``positive``, ``negative`` (clip ids), ``agreement``.
    """
    clips, triplets = dimsim_triplets(csv_path)
    if min_agreement is not None:
        triplets = clean_triplets(triplets, min_agreement)
    sources: list = [None] * len(clips)
    skipped = []
    if audio_root is not None:
        files = _audio_by_track(Path(audio_root))
        found = clips["track_id"].isin(files.keys())
        skipped = [{"id": c, "source": str(audio_root), "reason": f"no audio file for track {t}"}
                   for c, t in clips.loc[~found, ["id", "track_id"]].itertuples(index=False)]
        keep = set(clips.loc[found, "id"])
        triplets = triplets[triplets[["anchor", "positive", "negative"]].isin(keep).all(axis=1)]
        clips = clips[found].reset_index(drop=True)
        sources = [ClipSource(files[t], s, n) for t, s, n in
                   clips[["track_id", "start_seconds", "length_seconds"]].itertuples(index=False)]
    items = clips.assign(label=None, group=clips["track_id"])
    items["path"] = [str(s.file.path) if s is not None else None for s in sources]
    return Collection("dimsim", items, sources, f"Dim-sim triplets {Path(csv_path).name}",
                      triplets=triplets.reset_index(drop=True), skipped=skipped,
                      labelled=False)


# -- MSD audio and Last.fm tags ---------------------------------------------------------------
def _read_tags(csv_path: Path) -> pd.DataFrame:
    table = read_csv_table(csv_path, "tag file")
    missing = [c for c in ("track_id", "tag", "count") if c not in table.columns]
    if missing:
        raise DataError(f"{csv_path}: a tag file needs columns track_id,tag,count; missing "
                        f"{', '.join(missing)}")
    counts = pd.to_numeric(table["count"], errors="coerce")
    bad = table.index[counts.isna()]
    if len(bad):
        raise DataError(f"{csv_path}: line {int(bad[0]) + 2}: count "
                        f"{table.loc[bad[0], 'count']!r} is not a number")
    return pd.DataFrame({"track_id": table["track_id"].str.strip(),
                         "tag": table["tag"].str.strip().str.lower(), "count": counts})


def load_msd_tags(audio_root: str | Path, tags_csv: str | Path, min_count: float = 50,
                  tag_dimensions: Mapping[str, str] = TAG_DIMENSIONS) -> Collection:
    """MSD audio with its Last.fm tags grouped into dimensions (genre, mood, instrument, era).

    Parameters
    ----------
    audio_root : path
        A folder of audio files named by MSD track id, at any depth.
    tags_csv : path
        ``track_id,tag,count``: one row per tag of a track.
    min_count : float
        Tags with a lower count are left out (Last.fm counts are 0-100).
    tag_dimensions : mapping
        Tag -> dimension (default :data:`TAG_DIMENSIONS`); other tags are left out.

    Returns
    -------
    Collection
        One item per audio file: ``id`` = ``track_id``, ``label`` = its genre tags, ``group``
        = the track, a column per dimension holding its tags (``"jazz|soul"``, empty when it
        has none), and ``shared-tag`` dimensions in the order genre, mood, instrument, era
        (those that some track has).

    Raises
    ------
    DataError
        A malformed tag file, or no audio file in ``audio_root``.
    """
    audio_root, tags_csv = Path(audio_root), Path(tags_csv)
    files = _audio_by_track(audio_root)
    if not files:
        raise DataError(f"{audio_root}: no audio files found (looked for "
                        f"{', '.join(AUDIO_EXTENSIONS)})")
    tags = _read_tags(tags_csv)
    tags = tags[(tags["count"] >= min_count) & tags["tag"].isin(tag_dimensions.keys())]
    tags = tags.assign(dimension=tags["tag"].map(tag_dimensions))
    order = [d for d in dict.fromkeys(("genre", "mood", "instrument", "era",
                                       *tag_dimensions.values()))
             if d in set(tags["dimension"])]
    track_ids = sorted(files)
    joined = tags.groupby(["track_id", "dimension"])["tag"].agg(lambda t: "|".join(sorted(set(t))))
    items = pd.DataFrame({"id": track_ids, "track_id": track_ids, "group": track_ids})
    for dimension in order:
        items[dimension] = [joined.get((t, dimension), "") for t in track_ids]
    items["label"] = items["genre"] if "genre" in items.columns else None
    items["path"] = [str(files[t]) for t in track_ids]
    return Collection("msd", items, [FileSource(files[t]) for t in track_ids],
                      f"MSD audio {audio_root} with Last.fm tags {tags_csv.name} "
                      f"(count >= {min_count:g})",
                      dimensions=[Dimension(d, "shared-tag") for d in order])
