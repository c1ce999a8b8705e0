"""The multi-dimensional similarity tables (Ribecky, Abeßer & Lukashevich 2021, after Lee et
al. 2020): how well each embedding predicts triplets of held-out songs drawn from each
dimension of similarity (genre, instrument, tempo, key of ``grooves``).

Rows (:data:`ROWS`):

* ``baseline``: Lee et al.'s conditional similarity network on the mel spectrogram alone
  (``csn`` with ``backbone=baseline, inputs=("mel",)`` on ``multi-input[inputs=mel]``);
* ``multi-input``: the proposed network on mel, cyclic tempogram and CENS chroma;
* ``musicnn-msd``: a pretrained embedding (musicnn trained on the Million Song Dataset),
  Euclidean distance, nothing learned.

An item is one song, read as **one 3 s segment**: the ``multi-input`` feature (and
``musicnn-msd`` too) reads the song's first 3 s (its ``duration``), so each song is one item
and its own group, and ``group-kfold`` holds out whole songs. The conditional networks learn,
in each fold, from the training block of each dimension's similarity matrix
(:func:`mirsim.experiments.experiment.run_experiment`); every row is scored on
:func:`~mirsim.evaluation.dimensions.dimension_triplets` of the fold's test songs
(:class:`~mirsim.evaluation.dimensions.DimensionTripletMetrics`).

*Table 1*: per row, each dimension's score — in that dimension's own sub-space for a
conditional network, in the whole embedding otherwise — and their mean (``overall``).
*Table 2*: per conditional row, the score on each dimension's triplets of every combination
of active sub-spaces (the chosen sub-spaces concatenated). A radar plot draws the
single-dimension scores of Table 1. A resumable table (:mod:`mirsim.experiments.tables`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.experiments.experiment import FeatureSet, run_experiment
from mirsim.experiments.tables import TableKind, fill_table, percent

#: ``mirsim reproduce multidim``: ``multidim.json``, ``multidim.md`` (and ``multidim.png``).
MULTIDIM = TableKind("reproduce multidim", "multidim", "rows",
                     ("data", "data_params", "rows", "protocol", "folds", "seed",
                      "model_params", "judgments"))

@dataclass(frozen=True)
class Row:
    """A row of the multi-dimensional table: an embedding and how it is made.

    ``n_dimensions``: a conditional row learns the data's first ``n_dimensions`` dimensions
    (``None``: all of them); ``pretrained``: a row that learns nothing, skipped with its
    reason when its feature cannot be computed here (e.g. OpenL3 without its weights).
    """

    feature: str
    feature_params: dict[str, Any]
    model: str
    model_params: dict[str, Any]
    name: str
    n_dimensions: int | None = None
    pretrained: bool = False


_MEL = {"inputs": ["mel"]}
_MEL_CSN = {"inputs": ["mel"], "rows": [128]}

#: Every row ``reproduce multidim`` knows. The paper's Table 1: the baseline (Lee et al.'s
#: backbone on the mel spectrogram, 4 dimensions), pretrained embeddings, and the proposed
#: network single and multi-input, with 4 dimensions and with all the data's (6 in the paper).
#: The proposed single-input network with 4 dimensions is the baseline itself (one branch of
#: the multi-input backbone is the baseline's first blocks), so it has no row of its own;
#: ``single-input`` differs from the baseline only by learning more dimensions.
ROWS: dict[str, Row] = {
    "baseline": Row("multi-input", _MEL, "csn", {"backbone": "baseline", **_MEL_CSN},
                    "Baseline CSN (Lee et al., mel, 4 dims)", 4),
    "single-input": Row("multi-input", _MEL, "csn", _MEL_CSN,
                        "Proposed CSN, single input (mel), all dims"),
    "multi-input-4": Row("multi-input", {}, "csn", {},
                         "Proposed CSN, multi-input (mel, tempo, chroma), 4 dims", 4),
    "multi-input": Row("multi-input", {}, "csn", {},
                       "Proposed CSN, multi-input (mel, tempo, chroma), all dims"),
    "musicnn-msd": Row("musicnn-msd", {}, "euclidean", {},
                       "musicnn-msd (pretrained, Euclidean)", pretrained=True),
    "openl3": Row("openl3", {}, "euclidean", {}, "OpenL3 (pretrained, Euclidean)",
                  pretrained=True),
}

#: Data sets ``reproduce multidim`` runs on, and the judgments it scores by default.
DATA = {"grooves": None, "soundtracks": None, "cyberlioz": "cyberlioz",
        "cyberlioz-extended": "cyberlioz"}

#: What ``--quick`` changes: a handful of short songs, one epoch, two folds.
QUICK = {"songs": 16, "duration": 3.5, "epochs": 1, "folds": 2, "segments": 1}


def data_dimensions(data: str) -> tuple[Any, ...]:
    """The dimensions a data set of :data:`DATA` declares (without loading it).

    >>> [d.name for d in data_dimensions("cyberlioz-extended")]
    ['cluster', 'family', 'instrument', 'technique', 'pitch', 'dynamics']
    """
    from mirsim.datasets.cyberlioz import EXTENDED_DIMENSIONS, SEED_DIMENSIONS
    from mirsim.datasets import grooves, soundtracks

    return {"grooves": grooves.DIMENSIONS, "soundtracks": soundtracks.DIMENSIONS,
            "cyberlioz": SEED_DIMENSIONS, "cyberlioz-extended": EXTENDED_DIMENSIONS}[data]


def default_rows(n_dimensions: int) -> list[str]:
    """The rows for a data set with ``n_dimensions`` dimensions: with 4 or fewer, the rows
    with "all" dimensions that would repeat a 4-dimension one are left out.

    >>> default_rows(4)
    ['baseline', 'multi-input', 'musicnn-msd', 'openl3']
    >>> default_rows(6)[:4]
    ['baseline', 'single-input', 'multi-input-4', 'multi-input']
    """
    repeats = {"single-input", "multi-input-4"} if n_dimensions <= 4 else set()
    return [r for r in ROWS if r not in repeats]


def multidim_config(songs: int = 120, epochs: int = 10, folds: int = 5, seed: int = 0,
                    rows: Sequence[str] | None = None, lr: float = 1e-3,
                    duration: float | None = None, root: str | None = None,
                    data: str = "grooves", judgments: str | None = None,
                    segments: int = 3) -> dict[str, Any]:
    """The checked configuration of a ``reproduce multidim`` run (saved as ``config.json``).

    ``epochs`` and ``lr`` go to every conditional row (the papers train for far longer, at
    1e-5: see the README); ``songs``, ``duration``, ``segments`` and ``root`` to the
    ``grooves`` songs, ``songs`` (pieces per soundtrack, at most) and ``segments`` to the
    ``soundtracks``; ``judgments`` (a file or ``cyberlioz``) are scored in every sub-space;
    ``rows`` default to :func:`default_rows` of the data's number of dimensions.

    Examples
    --------
    >>> c = multidim_config(songs=8, epochs=1, folds=2)
    >>> c["rows"], c["model_params"]["multi-input"]
    (['baseline', 'multi-input', 'musicnn-msd', 'openl3'], {'epochs': 1, 'lr': 0.001, 'seed': 0})
    """
    from mirsim.errors import UnknownNameError
    from mirsim.evaluation.protocols import make_protocol
    from mirsim.models import make_model

    make_protocol("group-kfold", folds, seed)
    if data not in DATA:
        raise UnknownNameError("multidim data set", data, list(DATA))
    rows = list(rows) if rows is not None else default_rows(len(data_dimensions(data)))
    for r in rows:
        if r not in ROWS:
            raise UnknownNameError("row", r, list(ROWS))
    model_params = {}
    for r in rows:
        row = ROWS[r]
        learned = {"epochs": epochs, "lr": lr} if row.model == "csn" else {}
        model_params[r] = {**row.model_params, **learned, "seed": seed}
        make_model(row.model, **model_params[r])  # every parameter checked before any work
    clips = {"segments": segments} if segments > 1 else {}
    data_params = ({"songs": songs, **({"duration": duration} if duration else {}), **clips,
                    **({"root": root} if root else {})} if data == "grooves"
                   else {"limit": songs, **clips} if data == "soundtracks" else {})
    return MULTIDIM.config(data=data, data_params=data_params, rows=rows,
                           protocol="group-kfold", folds=folds, seed=seed,
                           model_params=model_params,
                           feature_params={r: ROWS[r].feature_params for r in rows},
                           judgments=DATA[data] if judgments is None
                           else None if judgments == "none" else judgments)


def row_features(row: str) -> tuple[str, dict[str, Any]]:
    """The feature and its parameters that ``row`` reads.

    >>> row_features("baseline")
    ('multi-input', {'inputs': ['mel']})
    """
    return ROWS[row].feature, ROWS[row].feature_params


def run_multidim(load: Callable[[str], FeatureSet], config: dict[str, Any], n_jobs: int = 1,
                 done: dict[str, dict[str, dict]] | None = None,
                 on_table: Callable[[dict], None] | None = None,
                 on_cell: Callable[[str, str, dict], None] | None = None,
                 judgments: Any = None) -> dict[str, Any]:
    """Evaluate every row on its feature set (``load(row)``, loaded when the row runs); the
    table as a JSON-able dict (``cells[row][data]``: the run's metrics, with ``dimensions``,
    and with ``judged_triplets`` when ``judgments`` (a loaded judgments file) are given).

    A pretrained row whose feature cannot be computed here is a cell ``{"skipped": reason}``.
    """
    from mirsim.errors import MirsimError

    first = load(config["rows"][0])
    data = first.collection.name
    dims = [d.name for d in first.collection.dimensions]
    if not dims:
        raise MirsimError(f"{data} declares no dimensions of similarity")
    table: dict[str, Any] = {
        "data": data, "description": first.collection.description,
        "protocol": config["protocol"], "folds": config["folds"], "seed": config["seed"],
        "n_items": len(first.X), "n_groups": int(len(np.unique(first.groups))),
        "data_params": config["data_params"], "segment": _segment_note(first),
        "dimensions": dims, "judgments": config.get("judgments"),
        "rows": list(config["rows"]), "models": list(config["rows"]), "features": [data],
        "row_names": {r: ROWS[r].name for r in config["rows"]},
    }

    def compute(row: str, _: str) -> dict[str, Any]:
        try:
            fs = first if row == config["rows"][0] else load(row)
        except MirsimError as exc:
            if not ROWS[row].pretrained:
                raise
            return {"skipped": str(exc).splitlines()[0]}
        return _cell(fs, row, config, n_jobs, judgments)

    return fill_table(table, config["rows"], [data], compute,
                      done=done, on_table=on_table, on_cell=on_cell)


def _segment_note(fs: FeatureSet) -> str:
    n, groups = len(fs.X), len(np.unique(fs.groups))
    if n == groups:
        return "one item per song or sound: its first 3 s"
    return f"{n} segments of 3 s from {groups} songs (group-kfold holds out whole songs)"


def _cell(fs: FeatureSet, row: str, config: dict[str, Any], n_jobs: int,
          judgments: Any) -> dict[str, Any]:
    from mirsim.experiments.judgments import judgments_for

    spec = ROWS[row]
    params = dict(config["model_params"][row])
    if spec.model == "csn":
        names = [d.name for d in fs.collection.dimensions]
        params["dimensions"] = names[: spec.n_dimensions or len(names)]
    matched = None if judgments is None else judgments_for(fs, judgments)
    result = run_experiment(fs, spec.model, config["protocol"], config["folds"],
                            config["seed"], {**params, **_tuples(params)}, n_jobs=n_jobs,
                            judgments=matched)
    j = result.to_json()
    dims = j["metrics"]["dimensions"]
    single = {d: spaces.get(d, spaces["whole"]) for d, spaces in dims.items()}
    overall = sum(s["mean"] for s in single.values()) / len(single)
    return {**j["metrics"], "single": single, "overall": overall,
            "learned_dimensions": params.get("dimensions"),
            "n_parameters": j["n_parameters"], "train_seconds": j["train_seconds"],
            "n_items": j["n_items"], "folds": result.folds, "distance": j["distance"],
            "queries": j["queries"]}


def _tuples(params: dict[str, Any]) -> dict[str, Any]:
    """JSON lists of a saved configuration back to the tuples the model's parameters are."""
    return {k: tuple(v) for k, v in params.items() if isinstance(v, list)}


def multidim_markdown(table: dict[str, Any]) -> str:
    """Table 1 (every row: overall and per-dimension triplet prediction, the judges'
    triplets when scored, P@5 of the labels, parameters, training time), Table 2 (every
    combination of a conditional row's sub-spaces) and, with judgments, which sub-space
    predicts the judges' triplets best, as Markdown.

    Examples
    --------
    >>> s = {"mean": 0.7, "std": 0.1}
    >>> cell = {"single": {"g": s}, "overall": 0.7, "p_at_5": s, "n_parameters": 5,
    ...         "train_seconds": 1.0, "dimensions": {"g": {"whole": s, "g": s}}}
    >>> t = {"data": "grooves", "n_items": 9, "description": "songs", "protocol":
    ...      "group-kfold", "folds": 2, "rows": ["m", "x"], "dimensions": ["g"],
    ...      "features": ["grooves"], "cells": {"m": {"grooves": cell},
    ...                                          "x": {"grooves": {"skipped": "no weights"}}}}
    >>> print("\\n".join(multidim_markdown(t).splitlines()[5:7]))
    | m | 70.0 | 70.0 ± 10.0 | 70.0 ± 10.0 | 5 | 1.0 |
    | x | skipped: no weights | | | | |
    """
    from mirsim.experiments.tables import preamble, row_label

    dims, data = table["dimensions"], table["features"][0]
    cells = {r: table["cells"][r][data] for r in table["rows"]}
    judged = _judged_sets(cells)
    lines = [*preamble(table),
             "| Embedding | overall (%) | " + " | ".join(f"{d} (%)" for d in dims)
             + "".join(f" | {j} (%)" for j in judged) + " | P@5 (%) | params | train s |",
             "|---|" + "---:|" * (len(dims) + len(judged) + 4)]
    for row, c in cells.items():
        if "skipped" in c:
            lines.append(f"| {row_label(table, row)} | skipped: {c['skipped']} |"
                         + " |" * (len(dims) + len(judged) + 3))
            continue
        lines.append(f"| {row_label(table, row)} | {100 * c['overall']:.1f} | "
                     + " | ".join(percent(c["single"][d]) for d in dims)
                     + "".join(f" | {percent(c['judged_triplets'][j]['whole'])}"
                               for j in judged)
                     + f" | {percent(c['p_at_5'])} | {c['n_parameters']:,} | "
                       f"{c['train_seconds']:.1f} |")
    lines += ["", "Triplet prediction of held-out items (mean ± std over folds): a triplet "
                  "(a, p, n) of a dimension is right when a is nearer to p (alike in that "
                  "dimension, another song or sound) than to n (not). A conditional network "
                  "is scored in the dimension's own sub-space, another embedding in the whole "
                  "embedding; overall = the mean over dimensions."
                  + (" Judged triplets (the listeners': every listener's pooled; "
                     "-high: those at least 90 % of them give) among held-out sounds, in the "
                     "whole embedding." if judged else "")]
    for row, c in cells.items():
        combos = [s for s in c.get("dimensions", {}).get(dims[0], {}) if s != "whole"]
        if not combos:
            continue
        lines += ["", f"Table 2 — {row_label(table, row)}: triplets of each dimension"
                      + (" and the judges'" if judged else "")
                      + " scored on the chosen sub-spaces concatenated (%)", "",
                  "| sub-spaces | " + " | ".join([*dims, *judged]) + " |",
                  "|---|" + "---:|" * (len(dims) + len(judged))]
        for combo in [*combos, "whole"]:
            name = "whole embedding" if combo == "whole" else combo
            scores = [c["dimensions"][d][combo] for d in dims] + \
                [c["judged_triplets"][j][combo] for j in judged]
            lines.append(f"| {name} | " + " | ".join(map(percent, scores)) + " |")
        best = best_combinations(c, dims)
        lines += ["", "The best six combinations (mean over the dimensions' triplets): "
                  + ", ".join(f"{combo} {100 * m:.1f}" for combo, m in best) + "."]
    lines += _disentanglement_lines(table, cells)
    lines += _judged_lines(table, cells, judged)
    return "\n".join(lines)


def best_combinations(cell: dict[str, Any], dims: Sequence[str], n: int = 6
                      ) -> list[tuple[str, float]]:
    """The ``n`` combinations of a conditional cell's sub-spaces (Table 2's rows, the whole
    embedding aside) with the highest mean triplet prediction over ``dims``, best first: the
    paper's "best six".

    Examples
    --------
    >>> s = lambda m: {"mean": m, "std": 0.0}
    >>> cell = {"dimensions": {"a": {"whole": s(0.9), "a": s(0.8), "b": s(0.5), "a+b": s(0.7)},
    ...                        "b": {"whole": s(0.9), "a": s(0.5), "b": s(0.7), "a+b": s(0.8)}}}
    >>> [(k, round(m, 2)) for k, m in best_combinations(cell, ["a", "b"], n=2)]
    [('a+b', 0.75), ('a', 0.65)]
    """
    combos = [k for k in cell["dimensions"][dims[0]] if k != "whole"]
    means = {k: float(np.mean([cell["dimensions"][d][k]["mean"] for d in dims])) for k in combos}
    return sorted(means.items(), key=lambda kv: -kv[1])[:n]


def disentanglement(cell: dict[str, Any]) -> dict[str, dict[str, float]]:
    """How much each learned dimension's own sub-space beats the other sub-spaces on that
    dimension's triplets (Table 2's single sub-spaces): ``own`` (its sub-space), ``others``
    (the mean of the other sub-spaces alone), ``gap`` (own - others). A disentangled network
    has large gaps; a gap near 0 means the sub-space has not specialised. Empty for a cell
    without sub-spaces.

    Examples
    --------
    >>> s = lambda m: {"mean": m, "std": 0.0}
    >>> cell = {"learned_dimensions": ["tempo", "key"], "dimensions": {
    ...     "tempo": {"tempo": s(0.9), "key": s(0.5)}, "key": {"tempo": s(0.6), "key": s(0.7)}}}
    >>> {d: round(v["gap"], 2) for d, v in disentanglement(cell).items()}
    {'tempo': 0.4, 'key': 0.1}
    """
    learned = [d for d in cell.get("learned_dimensions") or [] if d in cell.get("dimensions", {})]
    if len(learned) < 2:
        return {}
    out = {}
    for d in learned:
        scores = cell["dimensions"][d]
        own = scores[d]["mean"]
        others = float(np.mean([scores[o]["mean"] for o in learned if o != d]))
        out[d] = {"own": own, "others": others, "gap": own - others}
    return out


def _disentanglement_lines(table: dict[str, Any], cells: dict[str, dict[str, Any]]
                           ) -> list[str]:
    from mirsim.experiments.tables import row_label

    rows = {r: disentanglement(c) for r, c in cells.items()}
    rows = {r: d for r, d in rows.items() if d}
    if not rows:
        return []
    dims = list(dict.fromkeys(d for r in rows.values() for d in r))
    lines = ["", "Disentanglement: each dimension's triplets in its own sub-space minus the "
                 "mean of the other sub-spaces alone (percentage points; own % in brackets)", "",
             "| Embedding | " + " | ".join(dims) + " |", "|---|" + "---:|" * len(dims)]
    for r, d in rows.items():
        lines.append(f"| {row_label(table, r)} | " + " | ".join(
            f"{100 * d[x]['gap']:+.1f} ({100 * d[x]['own']:.1f})" if x in d else "—"
            for x in dims) + " |")
    return lines


def _judged_sets(cells: dict[str, dict[str, Any]]) -> list[str]:
    """The judged triplet sets the cells were scored on (``listeners``, ...)."""
    names: list[str] = []
    for c in cells.values():
        names += [j for j in c.get("judged_triplets", {}) if j not in names]
    return names


def best_judged_dimension(cell: dict[str, Any], judged: str = "listeners"
                          ) -> tuple[str, dict[str, float]] | None:
    """The single sub-space of a conditional cell that predicts the ``judged`` triplets best
    (``None`` for a cell without sub-spaces or without them).

    >>> s = lambda m: {"mean": m, "std": 0.0}
    >>> best_judged_dimension({"learned_dimensions": ["a", "b"], "judged_triplets":
    ...     {"listeners": {"a": s(0.6), "b": s(0.8), "a+b": s(0.9), "whole": s(0.9)}}})
    ('b', {'mean': 0.8, 'std': 0.0})
    """
    spaces = cell.get("judged_triplets", {}).get(judged, {})
    single = {d: spaces[d] for d in cell.get("learned_dimensions") or [] if d in spaces}
    if not single:
        return None
    best = max(single, key=lambda d: single[d]["mean"])
    return best, single[best]


def _judged_lines(table: dict[str, Any], cells: dict[str, dict[str, Any]],
                  judged: list[str]) -> list[str]:
    from mirsim.experiments.tables import row_label

    lines = []
    for row, c in cells.items():
        for j in judged:
            best = best_judged_dimension(c, j)
            if best is not None:
                lines.append(f"- {row_label(table, row)}: the {j} triplets are predicted best "
                             f"by the {best[0]} sub-space ({percent(best[1])} %; whole "
                             f"embedding {percent(c['judged_triplets'][j]['whole'])} %)")
    counts = {j: n for c in cells.values() for j, n in c.get("judged_counts", {}).items()}
    if counts:
        lines.append("- judged triplets among held-out sounds, over all folds: "
                     + ", ".join(f"{j} {n:,}" for j, n in counts.items()))
    return ["", "Which dimension predicts the judges best:", "", *lines] if lines else []


def multidim_radar(table: dict[str, Any], path: str | Path) -> Path:
    """A Kiviat (radar) plot of Table 1's single-dimension scores, one polygon per row,
    written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from mirsim.artefacts.files import atomic_path
    from mirsim.experiments.tables import row_label

    dims, data = table["dimensions"], table["features"][0]
    angles = np.linspace(0, 2 * np.pi, len(dims), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(5.5, 5.5), subplot_kw={"polar": True})
    for row in table["rows"]:
        if "skipped" in table["cells"][row][data]:
            continue
        single = table["cells"][row][data]["single"]
        values = [100 * single[d]["mean"] for d in dims]
        ax.plot(angles + angles[:1], values + values[:1], label=row_label(table, row))
        ax.fill(angles + angles[:1], values + values[:1], alpha=0.1)
    ax.set_xticks(angles, dims)
    ax.set_ylim(0, 100)
    ax.set_title(f"Triplet prediction of held-out songs (%), {data}", fontsize=10)
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.12), fontsize=8)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
