"""The Cyberlioz data: 78 recorded playing-technique sounds with listeners' consensus clusters,
and the AN-GNN paper's extended set (the same IMT classes at other pitches and dynamics).

Where the seed set is looked for, in order: the directory named by ``MIRSIM_CYBERLIOZ_DIR``, then
the user cache (where ``mirsim data fetch cyberlioz`` puts it). A directory is complete when it
holds ``seed_filelist.csv``, ``clusters.csv``, ``extended_filelist.csv`` and ``audio/*.mp3``.

The extended set needs the Studio-On-Line audio, which is proprietary. With ``sol_root`` the
manifest's files are read from there. Without it, every manifest row is *simulated* from its seed
recording: transposed by the interval between the row's pitch and the seed's (varispeed, as a
sampler transposes: the recording is played faster or slower, so timbre envelopes and formants
move with the pitch), and scaled by the difference of nominal levels of their dynamics
(:data:`DYNAMIC_LEVELS_DB`). Rendering is
deterministic and happens on demand; the resulting features are cached like any other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import librosa
import numpy as np
import pandas as pd

from mirsim.audio import FileSource
from mirsim.datasets.base import Dataset
from mirsim.datasets.collection import Collection
from mirsim.datasets.dimensions import Dimension
from mirsim.datasets.locations import CYBERLIOZ_FILES, find_cyberlioz, is_complete
from mirsim.errors import DataError
from mirsim.params import Anything, estimator, param
from mirsim.registries import DATASETS

REQUIRED_FILES = CYBERLIOZ_FILES

#: Nominal level of each dynamic marking, in dB relative to *forte*; a simulated sample is scaled
#: by the difference between its marking and its seed's. (A convention of ours: roughly 6 dB a
#: step, the spacing usually quoted for orchestral dynamics.)
DYNAMIC_LEVELS_DB = {"ppp": -24.0, "pp": -18.0, "p": -12.0, "mp": -9.0, "mf": -6.0,
                     "f": 0.0, "ff": 6.0, "fff": 12.0}


def _require_root(root: str | Path | None) -> Path:
    if root is not None:
        root = Path(root)
        if not is_complete(root):
            raise DataError(f"{root}: not a complete Cyberlioz directory (needs "
                            f"{', '.join(REQUIRED_FILES)} and audio/*.mp3)")
        return root
    found = find_cyberlioz()
    if found is None:
        raise DataError("Cyberlioz data not found: set MIRSIM_CYBERLIOZ_DIR to its directory, "
                        "or run `mirsim data fetch cyberlioz`")
    return found


def _seed_table(root: Path) -> pd.DataFrame:
    seeds = pd.read_csv(root / "seed_filelist.csv", index_col=0)
    clusters = pd.read_csv(root / "clusters.csv")
    missing = sorted(set(seeds["fname"]) - set(clusters["fname"]))
    if missing:
        raise DataError(f"{root / 'clusters.csv'}: no cluster for {', '.join(missing[:5])}")
    seeds = seeds.merge(clusters, on="fname", how="left", validate="one_to_one")
    return seeds.reset_index(drop=True)


def load_cyberlioz(root: str | Path | None = None) -> Collection:
    """The 78 seed sounds; label = consensus cluster (1..19), group = IMT class.

    Examples
    --------
    >>> c = load_cyberlioz()          # doctest: +SKIP
    >>> c.summary()                   # doctest: +SKIP
    'cyberlioz: 78 items, 19 labels, 78 groups'
    """
    root = _require_root(root)
    seeds = _seed_table(root)
    items = pd.DataFrame({
        "id": seeds["fname"], "label": seeds["cluster"].astype(int), "group": seeds["IMT"],
        "instrument": seeds["instrument"], "family": seeds["instrument family"],
        "technique": playing_techniques(seeds["IMT"], seeds["instrument"]),
        "pitch": seeds["pitch"], "dynamics": seeds["dynamics"],
        "path": [str(root / "audio" / f"{f}.mp3") for f in seeds["fname"]],
    })
    return Collection("cyberlioz", items, [FileSource(p) for p in items["path"]],
                      "Cyberlioz seed set: 78 recorded sounds, 31 listeners' consensus clusters",
                      dimensions=list(SEED_DIMENSIONS))


#: Dimensions of the seed set: the listeners' consensus cluster, the instrument family, the
#: instrument and the playing technique (pitch and dynamics barely vary among the 78: 66
#: sounds are C4, 62 mezzo-forte).
SEED_DIMENSIONS = (Dimension("cluster", "same-label", "label"), Dimension("family"),
                   Dimension("instrument"), Dimension("technique"))
#: Dimensions of the extended set: the seed set's, plus pitch and dynamics.
EXTENDED_DIMENSIONS = (*SEED_DIMENSIONS, Dimension("pitch"), Dimension("dynamics"))


def playing_techniques(imts: Sequence[str], instruments: Sequence[str]) -> list[str]:
    """The playing technique of each IMT class: its name without the instrument's
    (``"Vc-pizz-lv"`` of ``"Vc"`` -> ``"pizz-lv"``; mutes stay part of it: ``"S-ord"``).

    >>> playing_techniques(["Vc-pizz-lv", "TpC-S-ord", "Odd"], ["Vc", "TpC", "Hn"])
    ['pizz-lv', 'S-ord', 'Odd']
    """
    return [imt[len(ins) + 1:] if imt.startswith(f"{ins}-") else imt
            for imt, ins in zip(map(str, imts), map(str, instruments))]


def _midi(note) -> float | None:
    if not isinstance(note, str) or not note.strip():
        return None
    try:
        return float(librosa.note_to_midi(note.strip()))
    except librosa.util.exceptions.ParameterError:
        return None


def simulation_parameters(seed_pitch, seed_dynamics, pitch, dynamics) -> tuple[float, float]:
    """(semitones, gain in dB) that turn a seed recording into a manifest row.

    Unknown pitches or dynamics give no shift / no gain.

    Examples
    --------
    >>> simulation_parameters("C4", "mf", "C3", "ff")
    (-12.0, 12.0)
    >>> simulation_parameters(None, "mf", "C3", None)
    (0.0, 0.0)
    """
    a, b = _midi(seed_pitch), _midi(pitch)
    steps = b - a if a is not None and b is not None else 0.0
    la, lb = DYNAMIC_LEVELS_DB.get(str(seed_dynamics)), DYNAMIC_LEVELS_DB.get(str(dynamics))
    gain = lb - la if la is not None and lb is not None else 0.0
    return float(steps), float(gain)


class SimulatedSource:
    """A seed recording transposed by ``n_steps`` semitones (varispeed) and scaled by ``gain_db``.

    Its cache ``key`` hashes the seed's content and the rendering parameters; with no shift and
    no gain it is the seed's own key (the sound is the seed itself).
    """

    #: bump when the rendering of transposed rows changes
    version = 1
    #: the same for rows at the seed's pitch (2: exactly the seed's samples, scaled; version 1
    #: read 50 ms more of the seed, which reached the last 10 ms of the analysed second)
    unshifted_version = 2

    def __init__(self, seed: FileSource, n_steps: float, gain_db: float, name: str):
        self.seed, self.n_steps, self.gain_db, self.name = seed, n_steps, gain_db, name

    @property
    def key(self) -> str:
        if self.n_steps == 0 and self.gain_db == 0:
            return self.seed.key
        version = self.version if self.n_steps else self.unshifted_version
        blob = f"{self.seed.key}|steps={self.n_steps}|gain={self.gain_db}|v{version}"
        return hashlib.sha256(blob.encode()).hexdigest()

    def load(self, sr: int, duration: float | None = None) -> np.ndarray:
        # Transposition as a sampler does it (varispeed): play the recording 2**(n/12) times
        # faster. One resampling, so the 7k-row set renders in seconds, and only the part of
        # the seed that the output needs is read.
        ratio = 2.0 ** (self.n_steps / 12.0)
        # a margin for the resampler's edge only when resampling: without a shift the output
        # is exactly the seed's own (scaled), as the shared cache key promises
        need = None if duration is None else duration * ratio + (0.05 if self.n_steps else 0.0)
        y = self.seed.load(sr, need)
        if self.n_steps:
            y = librosa.resample(y, orig_sr=sr, target_sr=sr / ratio, res_type="soxr_hq")
        y = y * np.float32(10.0 ** (self.gain_db / 20.0))
        if duration is not None:
            y = y[: int(round(duration * sr))]
        return np.ascontiguousarray(y, dtype=np.float32)


def load_cyberlioz_extended(root: str | Path | None = None,
                            sol_root: str | Path | None = None) -> Collection:
    """The extended set (7,241 rows): label = the seed's cluster, group = IMT class.

    Parameters
    ----------
    root : path, optional
        Cyberlioz directory (default: :func:`find_cyberlioz`).
    sol_root : path, optional
        Root of a Studio-On-Line library; the manifest's ``filepath`` is relative to it. Without
        it the rows are simulated from the seed audio (see the module docstring).
    """
    root = _require_root(root)
    seeds = _seed_table(root)
    ext = pd.read_csv(root / "extended_filelist.csv", index_col=0).reset_index(drop=True)
    bad = ~ext["seed_id"].between(0, len(seeds) - 1)
    if bad.any():
        raise DataError(f"{root / 'extended_filelist.csv'}: seed_id out of range on "
                        f"{int(bad.sum())} rows")
    seed_rows = seeds.iloc[ext["seed_id"].to_numpy()].reset_index(drop=True)
    items = pd.DataFrame({
        "id": ext["filepath"].str.rsplit("/", n=1).str[-1].str.replace(".wav", "", regex=False),
        "label": seed_rows["cluster"].astype(int).to_numpy(),
        "group": ext["IMT"], "seed": seed_rows["fname"], "instrument": ext["instrument"],
        "family": ext["instrument family"],
        "technique": playing_techniques(ext["IMT"], ext["instrument"]),
        "pitch": ext["pitch"], "dynamics": ext["dynamics"],
    })
    if sol_root is not None:
        sol_root = Path(sol_root)
        if not sol_root.is_dir():
            raise DataError(f"{sol_root}: SOL root is not a folder")
        items["path"] = [str(sol_root / p) for p in ext["filepath"]]
        sources = [FileSource(p) for p in items["path"]]
        return Collection("cyberlioz-extended", items, sources,
                          f"Cyberlioz extended set: {len(items)} SOL samples",
                          dimensions=list(EXTENDED_DIMENSIONS))
    seed_sources = [FileSource(root / "audio" / f"{f}.mp3") for f in seeds["fname"]]
    sources = []
    for i, row in ext.iterrows():
        sid = int(row["seed_id"])
        steps, gain = simulation_parameters(seeds.at[sid, "pitch"], seeds.at[sid, "dynamics"],
                                            row["pitch"], row["dynamics"])
        sources.append(SimulatedSource(seed_sources[sid], steps, gain, name=str(row["filepath"])))
    items["n_steps"] = [s.n_steps for s in sources]
    items["gain_db"] = [s.gain_db for s in sources]
    return Collection("cyberlioz-extended", items, sources,
                      f"Cyberlioz extended set SIMULATED from the 78 seed recordings "
                      f"(varispeed transposition + gain per manifest row; no SOL audio): {len(items)} items",
                      dimensions=list(EXTENDED_DIMENSIONS))


def seed_copies(items: pd.DataFrame) -> np.ndarray:
    """Which rows of the simulated extended set are their seed sound itself (no transposition,
    no gain): a training variant that adds nothing. With real SOL audio (no ``n_steps``
    column) no row is marked.

    >>> seed_copies(pd.DataFrame({"n_steps": [0.0, 2.0, 0.0], "gain_db": [0.0, 0.0, -6.0]}))
    array([ True, False, False])
    """
    if "n_steps" not in items.columns:
        return np.zeros(len(items), dtype=bool)
    return ((items["n_steps"].to_numpy() == 0) & (items["gain_db"].to_numpy() == 0))


@DATASETS.register
@estimator
class CyberliozDataset(Dataset):
    """The 78 Cyberlioz seed sounds; label = listeners' consensus cluster, group = IMT."""

    name = "cyberlioz"
    root: str | None = param(None, Anything(), "the data's folder (default: found)")

    def load(self) -> Collection:
        return load_cyberlioz(self.root)


@DATASETS.register
@estimator
class CyberliozExtendedDataset(Dataset):
    """The extended set (7,241 rows), simulated from the seed sounds unless SOL is given."""

    name = "cyberlioz-extended"
    root: str | None = param(None, Anything(), "the seed set's folder (default: found)")
    sol_root: str | None = param(None, Anything(), "your SOL library (real audio)")

    def load(self) -> Collection:
        return load_cyberlioz_extended(self.root, self.sol_root)

