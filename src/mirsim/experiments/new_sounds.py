"""``mirsim reproduce new-sounds``: which learned metric hears like people on sounds it never
met, and for people it never met.

Every candidate is an input and a model (``"jtfs/lda"``; inputs may be concatenations such as
``"jtfs+musicnn-msd/lda"``), cross-validated on the 78 real Cyberlioz sounds under
``group-kfold`` (each sound its own group: every test sound is new to its fold's model),
scored against the consensus clusters (P@1, P@5, MAP@R) and against the individual
listeners' own groupings (triplet agreement on held-out anchors, the human reference beside
it: :mod:`mirsim.experiments.judgments`). A resumable table
(:mod:`mirsim.experiments.tables`): :data:`NEW_SOUNDS` names its files.

The table answers the generalisation goal: does the best learned metric beat the best
Euclidean input by at least :data:`GOAL_MAP_GAIN` MAP@R, with a triplet agreement of at least
:data:`GOAL_AGREEMENT`? :func:`goal_check` says, from the table alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.errors import MirsimError, UnknownNameError
from mirsim.experiments.experiment import FeatureSet, run_experiment
from mirsim.experiments.tables import (METRIC_NAMES, Cells, TableKind, fill_table,
                                       left_out_note, percent, preamble, row_name,
                                       row_overrides)

#: ``mirsim reproduce new-sounds``: ``new_sounds.json`` and ``new_sounds.md``.
NEW_SOUNDS = TableKind("reproduce new-sounds", "new_sounds", "candidates",
                       ("data", "candidates", "protocol", "folds", "seed", "candidate_params"))

#: What separates a candidate's input from its model.
SEPARATOR = "/"
#: Inputs and models of the default candidates: every input with every model from the
#: consensus clusters; a part's parameters in brackets (musicnn's pooled mid-end features).
DEFAULT_INPUTS = ("mfcc", "jtfs", "musicnn-msd", "musicnn-msd[layer=pooled]",
                  "jtfs+musicnn-msd", "jtfs+musicnn-msd[layer=pooled]")
DEFAULT_MODELS = ("euclidean", "lda", "nca", "lmnn", "mlp", "an-gnn")
#: The default candidates' other supervisions: the models that learn from each and their
#: inputs (``None``: every default input). Those of :data:`FROM_LISTENERS` where there are
#: judgments, ``extended`` where the data has variants. Fewer inputs where a cell is dear:
#: LMNN on the listeners' triplets takes minutes per fold on wide inputs (and loses MAP@R on
#: every one measured), and ``extended`` extracts every variant's features (thousands).
DEFAULT_SUPERVISED = {
    "listeners": (("lmnn",), ("jtfs", "musicnn-msd")),
    "coassociation": (("soft-lda", "pair-regression"), None),
    "soft-labels": (("soft-lda", "pair-regression"), None),
    "extended": (("lda", "mlp"), ("mfcc", "jtfs")),
    "augmented": (("lda", "mlp"), ("mfcc", "jtfs")),
}
#: The metrics of a cell in the Markdown table (with judgments also the agreement).
COLUMNS = ("p_at_1", "p_at_5", "map_at_r")
#: The goal: MAP@R above the best Euclidean input, and agreement with listeners.
GOAL_MAP_GAIN = 0.08
GOAL_AGREEMENT = 0.90
#: Supervisions a candidate can name: the consensus clusters (labels, the default), the
#: triplets of the individual listeners' groupings (:func:`listener_triplets`), the
#: clusters with the simulated pitch and dynamics variants of the training sounds
#: (``extended``: :data:`VARIANT_DATA`, see :func:`mirsim.experiments.experiment.variants_of`),
#: the listeners' co-association as target similarities (``coassociation``:
#: :func:`listener_coassociation`), or soft labels, the co-association blended with the
#: consensus clusters (``soft-labels``: :func:`soft_labels`), or the clusters with
#: audio-augmented copies of the training sounds (``augmented``: :data:`AUGMENTATION`).
SUPERVISIONS = ("clusters", "listeners", "extended", "coassociation", "soft-labels",
                "augmented")
#: What a model must learn from for each supervision (its ``supervision`` attribute), and
#: how the one-line refusal names it.
LEARNS_FROM = {"clusters": ("labels", "labels"), "extended": ("labels", "labels"),
               "augmented": ("labels", "labels"),
               "listeners": ("triplets", "judged triplets"),
               "coassociation": ("similarities", "target similarities"),
               "soft-labels": ("similarities", "target similarities")}
#: Supervisions made from the listeners' judgments (they need ``--judgments``).
FROM_LISTENERS = ("listeners", "coassociation", "soft-labels")
#: Weight of the co-association in the supervision ``soft-labels`` (the rest: the clusters).
SOFT_LABEL_SHARE = 0.5
#: The data set whose rows are variants of the sounds of another (supervision ``extended``).
VARIANT_DATA = {"cyberlioz": "cyberlioz-extended"}
#: The audio augmentation of the supervision ``augmented``: the views the self-supervised
#: ``simclr`` learns from (audiomentations: crop, pitch shift, EQ, gain, noise; its
#: defaults), this many per training sound, cached with the features.
AUGMENTATION = {"model": "simclr", "n_views": 8}
#: Share of the listeners a triplet needs for the supervision ``listeners``.
LISTENER_SHARE = 0.75
#: Every learned candidate's size with ``quick`` (a check that the command runs).
QUICK = {"epochs": 3, "hidden": (64,), "embedding_dim": 32}


def default_candidates(data: str = "cyberlioz", judged: bool = True) -> list[str]:
    """Every default input with every default model from the clusters, then with every
    model of each other supervision the data and the judgments allow
    (:data:`DEFAULT_SUPERVISED`): with listener judgments (``judged``) those learned from the
    listeners, on data with variants (:data:`VARIANT_DATA`) those learned with them.

    >>> default_candidates()[:2], len(default_candidates())
    (['mfcc/euclidean', 'mfcc/lda'], 70)
    >>> len(default_candidates("synth", judged=False))
    40
    """
    names = [f"{i}{SEPARATOR}{m}" for i in DEFAULT_INPUTS for m in DEFAULT_MODELS]
    for supervision, (models, inputs) in DEFAULT_SUPERVISED.items():
        if supervision in FROM_LISTENERS and not judged:
            continue
        if supervision == "extended" and data not in VARIANT_DATA:
            continue
        names += [SEPARATOR.join((i, m, supervision)) for i in inputs or DEFAULT_INPUTS
                  for m in models]
    return names


def parse_candidate(candidate: str) -> tuple[str, str, str]:
    """``"jtfs/lda"`` -> ``("jtfs", "lda", "clusters")``; a third part names the supervision
    (:data:`SUPERVISIONS`); anything else is a one-line error.

    >>> parse_candidate("jtfs+musicnn-msd/lmnn/listeners")
    ('jtfs+musicnn-msd', 'lmnn', 'listeners')
    >>> parse_candidate("lda")
    Traceback (most recent call last):
    ...
    mirsim.errors.MirsimError: candidate 'lda': write INPUT/MODEL[/SUPERVISION], e.g. jtfs/lda or jtfs/lmnn/listeners
    """
    parts = [p.strip() for p in candidate.split(SEPARATOR)]
    if len(parts) not in (2, 3) or not all(parts):
        raise MirsimError(f"candidate '{candidate}': write INPUT{SEPARATOR}MODEL[{SEPARATOR}"
                          f"SUPERVISION], e.g. jtfs{SEPARATOR}lda or jtfs{SEPARATOR}lmnn"
                          f"{SEPARATOR}listeners")
    supervision = parts[2] if len(parts) == 3 else "clusters"
    if supervision not in SUPERVISIONS:
        raise UnknownNameError("supervision", supervision, SUPERVISIONS)
    return parts[0], parts[1], supervision


def listener_triplets(judgments, min_share: float = LISTENER_SHARE
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The supervision ``listeners``: the triplets that at least ``min_share`` of the
    listeners give (item indices of the matched feature set), weighted by that share.

    ``judgments`` is an :class:`~mirsim.experiments.judgments.ExperimentJudgments` of listener
    groupings. On the 78 Cyberlioz sounds and 16 listeners: 202,724 distinct triplets, 47,556
    given by half of the listeners, 11,826 by three quarters (the default: fitting on all of
    them takes minutes per fold).
    """
    from mirsim.evaluation.judgments import triplet_shares

    if judgments is None or judgments.scorer.groupings is None:
        raise MirsimError("supervision 'listeners' needs --judgments with listener groupings")
    triplets, shares = triplet_shares(judgments.scorer.triplets)
    keep = shares >= min_share
    return triplets[keep], shares[keep]


def listener_coassociation(judgments) -> np.ndarray:
    """The supervision ``coassociation``: ``C[i, j]``, the share of the listeners who put
    items ``i`` and ``j`` in one group among those who grouped both (NaN where nobody did;
    :func:`mirsim.evaluation.judgments.coassociation`), over the items of the matched feature
    set. Each fold's model sees the block of its training items only
    (:func:`mirsim.evaluation.protocols.training_similarities`).
    """
    from mirsim.evaluation.judgments import coassociation

    if judgments is None or judgments.scorer.groupings is None:
        raise MirsimError("supervision 'coassociation' needs --judgments with listener "
                          "groupings")
    return coassociation(judgments.scorer.groupings)


def soft_labels(labels: np.ndarray, coassociation: np.ndarray,
                share: float = SOFT_LABEL_SHARE) -> np.ndarray:
    """The supervision ``soft-labels``: ``share * C[i, j] + (1 - share) * [same cluster]``,
    the listeners' co-association blended with the consensus clusters (a pair nobody judged
    counts as grouped by none).

    Examples
    --------
    >>> C = np.array([[1.0, 0.5, np.nan], [0.5, 1.0, 0.0], [np.nan, 0.0, 1.0]])
    >>> soft_labels(np.array([0, 0, 1]), C).tolist()
    [[1.0, 0.75, 0.0], [0.75, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    labels = np.asarray(labels)
    same = (labels[:, None] == labels[None, :]).astype(np.float64)
    return share * np.nan_to_num(np.asarray(coassociation, dtype=np.float64)) + (1 - share) * same


def new_sounds_config(data: str = "cyberlioz", candidates: Sequence[str] | None = None,
                      protocol: str = "group-kfold", folds: int = 5, seed: int = 0,
                      params: Sequence[str] | None = None, judgments: str | None = None,
                      quick: bool = False) -> dict[str, Any]:
    """The checked configuration of a ``reproduce new-sounds`` run (``config.json``).

    Parameters
    ----------
    candidates : sequence of str, optional
        ``INPUT/MODEL[/SUPERVISION]`` names (default :func:`default_candidates` of ``data``
        and ``judgments``).
    params : sequence of str, optional
        ``CANDIDATE:KEY=VALUE`` overrides, e.g. ``jtfs/lda:shrinkage=0.5``.
    judgments : str, optional
        The listener judgments file (or ``cyberlioz``) every cell is also scored against.
    quick : bool
        Train every learned candidate at the size of :data:`QUICK`.

    Examples
    --------
    >>> c = new_sounds_config(candidates=["mfcc/euclidean", "mfcc/lda"],
    ...                       params=["mfcc/lda:shrinkage=0.5"])
    >>> c["candidate_params"]["mfcc/lda"]["shrinkage"], c["inputs"]
    (0.5, ['mfcc'])
    """
    from mirsim.evaluation.protocols import make_protocol
    from mirsim.experiments.specs import model_params, params_config
    from mirsim.features import make_extractor
    from mirsim.models import make_model
    from mirsim.registries import MODELS
    from mirsim.registry import class_params

    make_protocol(protocol, folds, seed)
    if candidates is not None and not list(candidates):
        raise MirsimError("--candidates names no candidate (write INPUT/MODEL,...)")
    candidates = (default_candidates(data, bool(judgments)) if candidates is None
                  else list(candidates))
    if len(set(candidates)) != len(candidates):
        raise MirsimError(f"--candidates names a candidate twice: {', '.join(candidates)}")
    overrides = row_overrides(params, candidates, "CANDIDATE")
    inputs, models, candidate_params = [], {}, {}
    variant_inputs, augmented_inputs = set(), set()
    for c in candidates:
        feature, model, supervision = parse_candidate(c)
        make_extractor(feature)
        wanted, what = LEARNS_FROM[supervision]
        if wanted not in MODELS.get(model).supervision:
            raise MirsimError(f"candidate '{c}': model '{model}' does not learn from {what}")
        if supervision in FROM_LISTENERS and not judgments:
            raise MirsimError(f"candidate '{c}': supervision '{supervision}' needs --judgments")
        if supervision == "extended" and data not in VARIANT_DATA:
            raise MirsimError(f"candidate '{c}': supervision 'extended' needs data with "
                              f"variants ({', '.join(VARIANT_DATA)}), not '{data}'")
        has = class_params(MODELS.get(model))
        # from listeners' triplets a network learns with the triplet loss, unless told
        loss = "triplet" if supervision == "listeners" and "loss" in has else None
        live = {**{k: v for k, v in (QUICK if quick else {}).items() if k in has},
                **model_params(model, overrides.get(c, []), loss=loss)}
        make_model(model, **live)  # every parameter checked before any work
        candidate_params[c] = params_config(live)
        models[c] = model
        if feature not in inputs:
            inputs.append(feature)
        if supervision == "extended":
            variant_inputs.add(feature)
        if supervision == "augmented":
            augmented_inputs.add(feature)
    return NEW_SOUNDS.config(data=data, candidates=candidates, inputs=inputs,
                             variant_data=VARIANT_DATA.get(data) if variant_inputs else None,
                             variant_inputs=sorted(variant_inputs),
                             augmented_inputs=sorted(augmented_inputs),
                             candidate_models=models, candidate_params=candidate_params,
                             protocol=protocol, folds=folds, seed=seed, quick=quick,
                             judgments=judgments)


def run_new_sounds(feature_sets: dict[str, FeatureSet], config: dict[str, Any], *,
                   n_jobs: int = 1, judgments=None,
                   variant_sets: dict[str, FeatureSet] | None = None,
                   augmented_sets: dict[str, FeatureSet] | None = None,
                   done: Cells | None = None,
                   on_table: Callable[[dict], None] | None = None,
                   on_cell: Callable[[str, str, dict], None] | None = None) -> dict[str, Any]:
    """Evaluate every candidate of ``config``; return the table (JSON-able).

    Parameters
    ----------
    feature_sets : dict
        ``{input: FeatureSet}`` for every input of ``config`` (one collection).
    judgments : ListenerGroupings or JudgedTriplets, optional
        :func:`mirsim.experiments.judgments.load_judgments`: every cell also reports the
        triplet agreement, and the table the human reference.
    variant_sets : dict, optional
        ``{input: FeatureSet}`` of ``config["variant_data"]`` for every input of a candidate
        with supervision ``extended``.
    augmented_sets : dict, optional
        ``{input: FeatureSet}`` with augmented views (:data:`AUGMENTATION`) for every input
        of a candidate with supervision ``augmented``.
    done, on_table, on_cell
        As in :func:`mirsim.experiments.tables.fill_table`.
    """
    from mirsim.experiments.judgments import judgments_for

    first = next(iter(feature_sets.values()))
    candidates = config["candidates"]
    table: dict[str, Any] = {
        "data": first.collection.name, "description": first.collection.description,
        "protocol": config["protocol"], "folds": config["folds"], "seed": config["seed"],
        "n_items": len(first.X), "quick": bool(config.get("quick")),
        "features": [config["protocol"]], "models": list(candidates),
        "candidate_models": config["candidate_models"],
        "row_names": {c: c for c in candidates},
    }
    matched = {}
    if judgments is not None:  # per input: each may have skipped other items
        matched = {f: judgments_for(fs, judgments) for f, fs in feature_sets.items()}
        table["judgments"] = matched[first.feature].describe()

    def cell(candidate: str, _column: str) -> dict[str, Any]:
        feature, _, supervision = parse_candidate(candidate)
        triplets = (listener_triplets(matched.get(feature)) if supervision == "listeners"
                    else None)
        variants = None
        if supervision == "extended":
            variants = _variants(feature_sets[feature], (variant_sets or {}).get(feature))
        elif supervision == "augmented":
            variants = _augmented(feature_sets[feature], (augmented_sets or {}).get(feature))
        similarities = None
        if supervision in ("coassociation", "soft-labels"):
            similarities = listener_coassociation(matched.get(feature))
            if supervision == "soft-labels":
                similarities = soft_labels(feature_sets[feature].labels, similarities)
        return _cell(feature_sets[feature], config["candidate_models"][candidate],
                     config["candidate_params"][candidate], config, n_jobs,
                     matched.get(feature), triplets, variants, similarities, supervision)

    return fill_table(table, candidates, table["features"], cell, done=done,
                      on_table=on_table, on_cell=on_cell)


def _variants(fs: FeatureSet, variant_set: FeatureSet | None):
    """The extended set's rows as training variants of the seed sounds (copies left out)."""
    from mirsim.datasets.cyberlioz import seed_copies
    from mirsim.experiments.experiment import variants_of

    if variant_set is None:
        raise MirsimError(f"supervision 'extended' on {fs.feature}: its variants' features "
                          f"were not loaded")
    return variants_of(fs, variant_set, "seed", unchanged=seed_copies)


def _augmented(fs: FeatureSet, augmented_set: FeatureSet | None):
    """The augmented views of the sounds as training variants (the same items in the same
    order: checked)."""
    from mirsim.experiments.experiment import views_as_variants

    if augmented_set is None or not np.array_equal(augmented_set.kept, fs.kept):
        raise MirsimError(f"supervision 'augmented' on {fs.feature}: the augmented views of "
                          f"its sounds were not loaded")
    return views_as_variants(augmented_set)


def _cell(fs: FeatureSet, model: str, params: dict[str, Any], config: dict[str, Any],
          n_jobs: int, judgments, triplets=None, variants=None, similarities=None,
          supervision: str = "clusters") -> dict[str, Any]:
    from mirsim.models import model_class

    live = model_class(model)._params_from_config(params)  # components saved as JSON
    result = run_experiment(fs, model, config["protocol"], config["folds"], config["seed"],
                            live, n_jobs=n_jobs, judgments=judgments, triplets=triplets,
                            variants=variants, similarities=similarities)
    j = result.to_json()
    listeners = {} if "listeners" not in j else {"listeners": j["listeners"]["model"]}
    size = {}  # how much the supervision gave besides (or instead of) the labels
    if triplets is not None:
        size["n_triplets"] = int(len(triplets[0]))
    elif variants is not None:
        size["n_variants"] = int(len(variants.X))
    elif similarities is not None:
        pairs = similarities[np.triu_indices(len(similarities), 1)]
        size["n_pairs"] = int(np.isfinite(pairs).sum())
    return {**j["metrics"], "n_parameters": j["n_parameters"],
            "train_seconds": j["train_seconds"], "n_items": j["n_items"],
            "folds": result.folds, "queries": j["queries"], "distance": j["distance"],
            "feature": fs.feature, "model": model, "supervision": supervision, **size,
            **listeners}


def goal_check(table: dict[str, Any]) -> dict[str, Any] | None:
    """The best Euclidean input and the best learned candidate (by MAP@R), and whether the
    learned one meets the goal; ``None`` if the table has no Euclidean or no learned row.
    ``both_met`` lists the learned candidates that meet both goals (MAP@R gain and agreement),
    by MAP@R: the best by MAP@R need not be one of them.

    Examples
    --------
    >>> s = lambda v: {"mean": v, "std": 0.0}
    >>> t = {"features": ["group-kfold"], "models": ["a/euclidean", "a/lda"],
    ...      "candidate_models": {"a/euclidean": "euclidean", "a/lda": "lda"},
    ...      "cells": {"a/euclidean": {"group-kfold": {"map_at_r": s(0.25)}},
    ...                "a/lda": {"group-kfold": {"map_at_r": s(0.35),
    ...                                           "triplet_agreement": s(0.88)}}}}
    >>> g = goal_check(t)
    >>> g["learned"], round(g["gain"], 2), g["map_goal_met"], g["agreement_goal_met"]
    ('a/lda', 0.1, True, False)
    >>> g["both_met"]
    []
    """
    column = table["features"][0]
    cells = {c: table["cells"][c][column] for c in table["models"]
             if column in table["cells"].get(c, {})}
    models = table.get("candidate_models", {})
    plain = [c for c in cells if models.get(c) == "euclidean"]
    learned = [c for c in cells if models.get(c) != "euclidean"]
    if not plain or not learned:
        return None
    best_plain = max(plain, key=lambda c: cells[c]["map_at_r"]["mean"])
    best = max(learned, key=lambda c: cells[c]["map_at_r"]["mean"])
    gain = cells[best]["map_at_r"]["mean"] - cells[best_plain]["map_at_r"]["mean"]
    agreement = (cells[best].get("triplet_agreement") or {}).get("mean")
    floor = cells[best_plain]["map_at_r"]["mean"] + GOAL_MAP_GAIN
    both = [c for c in sorted(learned, key=lambda c: -cells[c]["map_at_r"]["mean"])
            if cells[c]["map_at_r"]["mean"] >= floor
            and ((cells[c].get("triplet_agreement") or {}).get("mean") or 0.0) >= GOAL_AGREEMENT]
    return {"euclidean": best_plain, "learned": best, "gain": gain, "both_met": both,
            "map_goal_met": gain >= GOAL_MAP_GAIN, "agreement": agreement,
            "agreement_goal_met": None if agreement is None else agreement >= GOAL_AGREEMENT}


def new_sounds_markdown(table: dict[str, Any]) -> str:
    """The table as Markdown: one row per candidate (input, model), P@1, P@5, MAP@R (and the
    triplet agreement columns, with judgments) in %, mean ± std, the training time; the human
    reference row; the goal check below.

    Examples
    --------
    >>> s = {"mean": 0.5, "std": 0.1}
    >>> t = {"data": "d", "description": "", "protocol": "group-kfold", "folds": 5,
    ...      "n_items": 9, "features": ["group-kfold"], "models": ["mfcc/lda"],
    ...      "candidate_models": {"mfcc/lda": "lda"},
    ...      "cells": {"mfcc/lda": {"group-kfold": {"p_at_1": s, "p_at_5": s, "map_at_r": s,
    ...                                              "train_seconds": 1.0}}}}
    >>> print(new_sounds_markdown(t).splitlines()[5])
    | mfcc | LDA | clusters | 50.0 ± 10.0 | 50.0 ± 10.0 | 50.0 ± 10.0 | 1.0 |
    """
    column = table["features"][0]
    judged = table.get("judgments") or {}
    metrics = list(COLUMNS)
    if any("triplet_agreement" in (table["cells"][c].get(column) or {})
           for c in table["models"]):
        metrics += ["triplet_agreement", "triplet_agreement_high"]
    head = ("| Input | Model | Supervision | " + " | ".join(f"{METRIC_NAMES.get(m, m)} (%)" for m in metrics)
            + " | train s |")
    lines = [*preamble(table)]
    if table.get("quick"):
        lines[-1:] = ["Quick run (small networks, 3 epochs): a check that the command runs, "
                      "not a result.", ""]
    lines += [head, "|---|---|---|" + "---:|" * (len(metrics) + 1)]
    for c in table["models"]:
        cell = table["cells"][c][column]
        feature, model, supervision = parse_candidate(c)
        values = [percent(cell[m]) if m in cell else "—" for m in metrics]
        lines.append(f"| {feature} | {row_name(model)} | {supervision} | " + " | ".join(values)
                     + f" | {cell['train_seconds']:.1f} |")
    human = judged.get("human_reference") or {}
    if human:
        values = [percent(human[m]) if m in human else "—" for m in metrics]
        lines.append(f"| — | Human reference ({len(judged['listeners'])} listeners) | — | "
                     + " | ".join(values) + " | — |")
    if any((table["cells"][c].get(column) or {}).get("supervision") == "listeners"
           for c in table["models"]):
        lines += ["", f"Supervision `listeners`: each fold's model learned from the triplets "
                      f"among its training sounds that at least {100 * LISTENER_SHARE:.0f} % of "
                      f"the listeners give (weighted by that share), no cluster label; its "
                      f"agreement is measured on held-out sounds with the same listeners, so "
                      f"it says nothing about new listeners."]
    if any((table["cells"][c].get(column) or {}).get("supervision") in ("coassociation",
                                                                          "soft-labels")
           for c in table["models"]):
        lines += ["", f"Supervision `coassociation`: each fold's model learned from the share of "
                      f"the listeners who grouped each pair of its training sounds together (no "
                      f"test sound's row or column), no cluster label; `soft-labels`: that share "
                      f"weighted {SOFT_LABEL_SHARE:g}, plus {1 - SOFT_LABEL_SHARE:g} for two "
                      f"sounds of one consensus cluster. The agreement is measured on held-out "
                      f"sounds with the same listeners, so it says nothing about new listeners."]
    goal = goal_check(table)
    if goal is not None:
        met = "met" if goal["map_goal_met"] else "not met"
        text = (f"Goal: best learned {goal['learned']} against best Euclidean "
                f"{goal['euclidean']}: MAP@R {100 * goal['gain']:+.1f} points (goal "
                f"≥ +{100 * GOAL_MAP_GAIN:.0f}: {met})")
        if goal["agreement"] is not None:
            text += (f"; triplet agreement {100 * goal['agreement']:.1f} % (goal ≥ "
                     f"{100 * GOAL_AGREEMENT:.0f} %: "
                     f"{'met' if goal['agreement_goal_met'] else 'not met'})")
        lines += ["", text + "."]
        if goal["agreement"] is not None:
            lines += ["", "Both goals met by: " + (", ".join(goal["both_met"]) or "none") + "."]
    return "\n".join(lines + left_out_note(table))
