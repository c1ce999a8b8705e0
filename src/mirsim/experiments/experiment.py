"""One experiment: data -> features -> metric model -> protocol -> metrics.

Self-supervised models (a model class with ``needs_views``, e.g. ``simclr``) learn from
augmented views of the sounds instead of labels: :func:`load_features` extracts the views the
model asks for, and every fit sees the views of its training items only. With labels, the
protocols measure the metric on labels it never saw. An unlabelled collection (a flat folder)
can only train such a model; its experiment is a held-out check that needs no labels
(:func:`run_experiment`: does a view of a held-out sound find its own sound?).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pathlib import Path

from mirsim.datasets import Collection, load_collection
from mirsim.errors import DataError, MirsimError, UnknownNameError
from mirsim.evaluation.protocols import ProtocolResult, TrainingVariants, evaluate_protocol
from mirsim.experiments.judgments import ExperimentJudgments
from mirsim.experiments.specs import params_config
from mirsim.features import make_extractor
from mirsim.features.extraction import FeatureCache, extract_features
from mirsim.models import make_model, model_class

#: Metrics reported by ``mirsim train --json`` (mean and std over folds).
REPORTED_METRICS = ("p_at_1", "p_at_5", "ii_p_at_5", "map_at_r")
#: What an unlabelled experiment reports instead (mean and std over views; see
#: :mod:`mirsim.evaluation.own_sound`).
OWN_SOUND_METRICS = ("own_top_1", "own_top_5", "own_map")
#: Share of an unlabelled collection's items held out for its check.
HELD_OUT_SHARE = 0.2


@dataclass
class FeatureSet:
    """Features of the usable items of a collection, and the items that were skipped."""

    collection: Collection
    feature: str
    X: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    kept: np.ndarray
    skipped: list[dict[str, str]] = field(default_factory=list)
    feature_identity: str = ""
    #: ``(n, v, d)`` features of augmented views of the items (for self-supervised models)
    views: np.ndarray | None = None
    #: what the views were made with (:func:`view_settings`), ``None`` without views
    view_settings: dict[str, Any] | None = None

    @property
    def labelled(self) -> bool:
        """Whether the items have labels (``False``: an unlabelled collection)."""
        return self.collection.labelled


def view_settings(model: Any) -> dict[str, Any] | None:
    """What the views a model learns from depend on (augmentation parameters, number of views,
    seed), or ``None`` for a model that needs no views.

    Examples
    --------
    >>> view_settings(make_model("simclr", n_views=3))["n_views"], view_settings(make_model("mlp"))
    (3, None)
    """
    if not type(model).needs_views:
        return None
    return {"augmentation": model.view_augmentation().augmentation_params(),
            "n_views": int(model.n_views), "seed": int(model.seed)}


def check_supervision(collection: Collection, model: str) -> None:
    """Refuse, in one line, a model that needs labels on an unlabelled collection.

    Examples
    --------
    >>> import pandas as pd
    >>> c = Collection("lib", pd.DataFrame({"id": ["a"], "label": [None], "group": ["a"]}),
    ...                [None], labelled=False)
    >>> check_supervision(c, "simclr")
    >>> check_supervision(c, "mlp")
    Traceback (most recent call last):
    ...
    mirsim.errors.DataError: lib has no labels (a folder without sub-folders): model 'mlp' needs labels to learn and to be evaluated; use a self-supervised model (--model simclr), or put the sounds in one sub-folder per label
    """
    if not collection.labelled and not model_class(model).needs_views:
        raise DataError(f"{collection.name} has no labels (a folder without sub-folders): "
                        f"model '{model}' needs labels to learn and to be evaluated; use a "
                        f"self-supervised model (--model simclr), or put the sounds in one "
                        f"sub-folder per label")


#: What :func:`load_features` does with items whose audio is an earlier item's.
DUPLICATES = ("drop", "error")


def load_features(data: str | Collection, feature: str, feature_params: dict | None = None,
                  data_options: dict | None = None, n_jobs: int = 1,
                  cache: FeatureCache | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  duplicates: str = "drop", model: str | None = None,
                  model_params: dict[str, Any] | None = None) -> FeatureSet:
    """Load a data set and extract (or read from the cache) one feature for every item, and
    the features of augmented views of every item if ``model`` learns from them.

    Unreadable items are skipped and listed in ``skipped`` with their reason, after what the
    collection itself skipped (e.g. dangling symlinks of a folder).

    Items with the same audio content as an earlier item (the same content hash, hence also
    two rows naming one file) are duplicates: left in, a duplicate could sit in a training
    fold while its copy is a test query, and retrieve it at distance 0. By default each is
    dropped, listed in ``skipped`` with the reason ``duplicate of <id of the first>``, and a
    warning (logger ``mirsim.experiments.experiment``) says how many.

    Parameters
    ----------
    progress : callable, optional
        Called with ``(items done so far, total)``.
    duplicates : {"drop", "error"}
        Drop duplicates (default), or raise :class:`~mirsim.errors.DataError` if there is one.
    model, model_params : optional
        The model the features are for. A model that needs labels is refused on an
        unlabelled collection before any feature is extracted; for a self-supervised model
        (``needs_views``), the views its parameters ask for are extracted too (``views``,
        cached like the features): an item whose views cannot be made is skipped with the
        reason.

    Examples
    --------
    >>> import tempfile, os, soundfile as sf
    >>> d = tempfile.mkdtemp()
    >>> for name, f in (("a", 0.1), ("b", 0.3)):
    ...     sf.write(os.path.join(d, name + ".wav"), np.sin(np.arange(8000) * f), 8000)
    >>> _ = open(os.path.join(d, "m.csv"), "w").write("path,label\\na.wav,x\\nb.wav,y\\na.wav,x\\n")
    >>> fs = load_features(os.path.join(d, "m.csv"), "mfcc", cache=FeatureCache(d))
    >>> fs.X.shape, fs.skipped[0]["reason"]
    ((2, 40), 'duplicate of a.wav')
    """
    if duplicates not in DUPLICATES:
        raise UnknownNameError("duplicates setting", duplicates, DUPLICATES)
    collection = data if isinstance(data, Collection) else load_collection(data, **(data_options or {}))
    if model is not None:
        check_supervision(collection, model)
    extractor = make_extractor(feature, **(feature_params or {}))
    done, total = [0], [len(collection)]

    def step(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], total[0])

    result = extract_features(collection.sources, extractor, cache=cache, n_jobs=n_jobs,
                              progress=step)
    unique, copies = _first_of_each_content(collection, result.ok)
    if copies and duplicates == "error":
        raise DataError(f"{collection.name}: {len(copies)} item(s) have the same audio as an "
                        f"earlier item, e.g. {copies[0]['id']}: {copies[0]['reason']}")
    kept = result.ok[unique]
    X = result.features[unique]
    settings = view_settings(make_model(model, **(model_params or {}))) if model else None
    views, view_skipped = None, []
    if settings is not None:
        total[0] += settings["n_views"] * len(kept)
        views, usable, view_skipped = _views_of(collection, kept, extractor, settings, cache,
                                                n_jobs, step)
        kept, X = kept[usable], X[usable]
    if len(kept) < 2:
        raise DataError(f"{collection.name}: fewer than two usable items "
                        f"({len(result.skipped) + len(copies)} skipped)")
    items = collection.items.iloc[kept]
    skipped = list(collection.skipped) + [
        {"id": str(collection.items.at[i, "id"]), "source": name, "reason": reason}
        for i, name, reason in result.skipped] + copies + view_skipped
    if copies:
        logging.getLogger(__name__).warning(
            "%s: %d duplicate item(s) dropped (the same audio as an earlier item), e.g. %s: %s",
            collection.name, len(copies), copies[0]["id"], copies[0]["reason"])
    return FeatureSet(collection, feature, X, items["label"].to_numpy(),
                      items["group"].astype(str).to_numpy(), kept, skipped,
                      extractor.identity, views, settings)


def _views_of(collection: Collection, kept: np.ndarray, extractor: Any,
              settings: dict[str, Any], cache: FeatureCache | None, n_jobs: int,
              progress: Callable[[int], None]
              ) -> tuple[np.ndarray, np.ndarray, list[dict[str, str]]]:
    """Views of the items ``kept``; which of them have all their views (positions in
    ``kept``); the others as skipped entries."""
    from mirsim.features.views import ViewAugmentation, extract_views

    result = extract_views([collection.sources[i] for i in kept], extractor,
                           ViewAugmentation(**settings["augmentation"]), settings["n_views"],
                           settings["seed"], cache=cache, n_jobs=n_jobs, progress=progress)
    skipped = [{"id": str(collection.items.at[kept[j], "id"]), "source": name,
                "reason": f"augmented view: {reason}"} for j, name, reason in result.skipped]
    return result.features, result.ok, skipped


def _first_of_each_content(collection: Collection, ok: np.ndarray
                           ) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Positions in ``ok`` of the first item of each audio content (content hash: the key
    that the feature cache already computed), and the later ones as skipped entries."""
    first: dict[str, int] = {}
    unique: list[int] = []
    copies: list[dict[str, str]] = []
    for position, i in enumerate(ok):
        source = collection.sources[i]
        if source.key in first:
            copies.append({"id": str(collection.items.at[i, "id"]), "source": source.name,
                           "reason": f"duplicate of {collection.items.at[first[source.key], 'id']}"})
        else:
            first[source.key] = int(i)
            unique.append(position)
    return np.asarray(unique, dtype=int), copies


@dataclass
class ExperimentResult:
    """What ``mirsim train`` reports. ``protocol_result.held_out`` holds the last fold's
    held-out embeddings, which a run directory keeps as ``test_embeddings.npz``
    (:mod:`mirsim.experiments.heldout`).

    An unlabelled experiment (``labelled`` False, protocol ``held-out-views``) reports
    :data:`OWN_SOUND_METRICS` over ``n_held_out`` held-out items (one "fold" per view), and in
    ``reference`` the same check of the Euclidean distance between standardised features.
    """

    data: str
    feature: str
    model: str
    protocol: str
    folds: int
    seed: int
    protocol_result: ProtocolResult
    n_items: int
    model_params: dict[str, Any]
    description: str = ""
    skipped: list[dict[str, str]] = field(default_factory=list)
    distance: str = ""
    labelled: bool = True
    n_held_out: int = 0
    reference: dict[str, Any] | None = None
    #: agreement with listeners over the run (``--judgments``), see
    #: :meth:`mirsim.experiments.judgments.ExperimentJudgments.result_json`
    judgments: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: data, feature, model, protocol, folds, n_items,
        train_seconds, metrics {name: {mean, std}} and extras (with judgments, the triplet
        agreement metrics and a ``listeners`` entry)."""
        from mirsim.evaluation.dimensions import dimension_summary

        summary = self.protocol_result.summary()
        names = REPORTED_METRICS if self.labelled else OWN_SOUND_METRICS
        dimensions = dimension_summary(summary)
        judged = dimension_summary(summary, prefix="judged")
        extra: dict[str, Any] = {} if self.labelled else {
            "labelled": False, "n_held_out": self.n_held_out, "reference": self.reference,
            "note": _unlabelled_note(self.n_held_out, self.folds)}
        if self.judgments is not None:
            extra["listeners"] = self.judgments["listeners"]
        return {
            "data": self.data, "feature": self.feature, "model": self.model,
            "protocol": self.protocol, "folds": self.folds, "n_items": self.n_items,
            "train_seconds": round(self.protocol_result.train_seconds, 3),
            "metrics": {**{m: summary[m] for m in names},
                        **(self.judgments or {}).get("metrics", {}),
                        **({"dimensions": dimensions} if dimensions else {}),
                        **({"judged_triplets": judged,
                            "judged_counts": {k.split(":", 1)[1]: v["total"]
                                              for k, v in summary.items()
                                              if k.startswith("n_judged:")}}
                           if judged else {})}, **extra,
            "queries": {"counted": summary.get("n_queries", {}).get("total"),
                        "without_relevant": summary.get("n_without_relevant", {}).get("total")},
            "distance": self.distance,
            "seed": self.seed, "n_parameters": self.protocol_result.n_parameters,
            "model_params": params_config(self.model_params), "description": self.description,
            "n_skipped": len(self.skipped),
            "per_fold": self.protocol_result.per_fold,
            **extra,
        }


def views_as_variants(features: FeatureSet) -> TrainingVariants:
    """The augmented views of ``features`` (loaded for a model with ``needs_views``, see
    :func:`load_features`) as training variants of their items: each view has its item's
    label and group, and a fold learns from the views of its training items only.

    Examples
    --------
    >>> fs = FeatureSet(None, "toy", np.zeros((2, 3)), np.array([0, 1]), np.array(["a", "b"]),
    ...                 np.arange(2), views=np.ones((2, 4, 3)))
    >>> v = views_as_variants(fs)
    >>> v.X.shape, v.source.tolist()
    ((8, 3), [0, 0, 0, 0, 1, 1, 1, 1])
    """
    if features.views is None:
        raise MirsimError(f"{features.feature}: no augmented views were loaded")
    n, n_views, d = features.views.shape
    return TrainingVariants(features.views.reshape(n * n_views, d),
                            np.repeat(np.arange(n), n_views))


def variants_of(features: FeatureSet, variant_features: FeatureSet, source: str = "seed",
                unchanged: Callable[[Any], np.ndarray] | None = None) -> TrainingVariants:
    """The items of ``variant_features`` as training variants of the items of ``features``.

    Column ``source`` of the variant collection names the id of the item each variant was made
    from (the Cyberlioz extended set: ``seed``, the seed sound's fname). Variants of an item
    that ``features`` does not hold (skipped, or a duplicate dropped) are left out, and so are
    those for which ``unchanged(items)`` is true (copies of the source itself: in the extended
    set the rows at the seed's own pitch and dynamics).

    Raises
    ------
    MirsimError
        The variant collection has no column ``source``, or no variant is left.
    """
    items = variant_features.collection.items.iloc[variant_features.kept]
    if source not in items.columns:
        raise MirsimError(f"{variant_features.collection.name}: no column '{source}' naming "
                          f"the item each row was made from")
    ids = features.collection.items["id"].astype(str).to_numpy()[features.kept]
    position = {i: n for n, i in enumerate(ids)}
    rows = np.array([position.get(str(v), -1) for v in items[source]])
    keep = rows >= 0
    if unchanged is not None:
        keep &= ~np.asarray(unchanged(items), dtype=bool)
    if not keep.any():
        raise MirsimError(f"{variant_features.collection.name}: no row is a variant of an item "
                          f"of {features.collection.name}")
    return TrainingVariants(variant_features.X[keep], rows[keep])


def dimension_matrices(features: FeatureSet) -> dict[str, np.ndarray] | None:
    """The similarity matrices of the dimensions the collection declares, over the usable
    items (rows in the order of ``features.X``), or ``None`` if it declares none.

    Examples
    --------
    >>> import pandas as pd
    >>> from mirsim.datasets.dimensions import Dimension
    >>> items = pd.DataFrame({"id": list("abc"), "label": list("xxy"), "group": list("abc"),
    ...                       "genre": list("xxy")})
    >>> c = Collection("toy", items, [None] * 3, dimensions=[Dimension("genre")])
    >>> fs = FeatureSet(c, "toy", np.zeros((2, 1)), np.array(["x", "y"]), np.array(["a", "c"]),
    ...                 np.array([0, 2]))
    >>> dimension_matrices(fs)["genre"].tolist()
    [[True, False], [False, True]]
    """
    from mirsim.datasets.dimensions import similarity_matrices

    if not features.collection.dimensions:
        return None
    items = features.collection.items.iloc[features.kept].reset_index(drop=True)
    return similarity_matrices(items, features.collection.dimensions)


def _learns_dimensions(model: str, features: FeatureSet) -> dict[str, np.ndarray] | None:
    """The per-dimension matrices a model learns from (``similar=``) when it can and the
    collection declares dimensions, else ``None`` (the model learns as it would anyway)."""
    if "similar" not in model_class(model).supervision:
        return None
    return dimension_matrices(features)


def _with_dimension_metrics(extra_metrics: Callable | None,
                            matrices: dict[str, np.ndarray] | None, X: np.ndarray,
                            groups: np.ndarray, seed: int, judgments: ExperimentJudgments | None = None
                            ) -> Callable | None:
    """``extra_metrics`` and, when the collection has dimensions, the per-dimension triplet
    scores of held-out items (:class:`mirsim.evaluation.dimensions.DimensionTripletMetrics`;
    positives of another group than the anchor's);
    with ``judgments``, also the listeners' triplets among held-out items in every sub-space
    (``listeners``: every listener's, pooled; ``listeners-high``: those at least 90 % of the
    listeners give, once each)."""
    if matrices is None:
        return extra_metrics
    from mirsim.evaluation.dimensions import DimensionTripletMetrics

    scorer = DimensionTripletMetrics(X, matrices, seed=seed, groups=groups,
                                     judged=None if judgments is None
                                     else judged_triplet_sets(judgments.scorer))
    if extra_metrics is None:
        return scorer
    return functools.partial(_both_metrics, extra_metrics, scorer)


def judged_triplet_sets(scorer: Any) -> dict[str, np.ndarray]:
    """The listeners' triplets of a :class:`~mirsim.evaluation.judgments.ListenerJudgments`
    as fixed sets: ``listeners`` (every listener's, pooled) and, for groupings,
    ``listeners-high`` (the high-agreement triplets, once each).

    Examples
    --------
    >>> from mirsim.evaluation.judgments import ListenerJudgments
    >>> j = ListenerJudgments.from_groupings(np.array([[0, 0, 1], [0, 0, 1]]), ("A", "B"))
    >>> {k: len(v) for k, v in judged_triplet_sets(j).items()}
    {'listeners': 4, 'listeners-high': 2}
    """
    sets = {"listeners": np.concatenate([np.asarray(t).reshape(-1, 3) for t in scorer.triplets])}
    if scorer.high is not None:
        high = [np.asarray(t).reshape(-1, 3) for t in scorer.high]
        sets["listeners-high"] = np.unique(np.concatenate(high), axis=0)
    return sets


def _both_metrics(first: Callable, second: Callable, fold: Any) -> dict[str, float]:
    return {**first(fold), **second(fold)}


def run_experiment(features: FeatureSet, model: str, protocol: str = "kfold", folds: int = 5,
                   seed: int = 0, model_params: dict[str, Any] | None = None,
                   on_fold: Callable[[int, int], None] | None = None,
                   n_jobs: int = 1, extra_metrics: Callable | None = None,
                   judgments: ExperimentJudgments | None = None,
                   triplets: tuple[np.ndarray, np.ndarray | None] | None = None,
                   variants: TrainingVariants | None = None,
                   similarities: np.ndarray | None = None
                   ) -> ExperimentResult:
    """Evaluate one model on one feature set under one protocol (``n_jobs`` folds at once;
    ``extra_metrics``, ``triplets`` (supervision by judged triplets instead of labels),
    ``variants`` (extra training items made from the items, :func:`variants_of`),
    ``similarities`` (target similarities between the items instead of labels): see
    :func:`mirsim.evaluation.protocols.evaluate_protocol`).

    With ``judgments`` (:func:`mirsim.experiments.judgments.judgments_for` of the same feature
    set) each fold's model is also scored against the listeners, on the triplets whose anchor
    is one of the fold's test items, and the run reports their agreement.

    On a collection that declares dimensions of similarity (``grooves``, a tagged CSV), a
    model whose ``supervision`` has ``"similar"`` (``csn``) learns, in each fold, from the
    training block of every dimension's similarity matrix (:func:`dimension_matrices`;
    ``groups`` as given) instead of the labels; every model is also scored on triplets of
    held-out items drawn from each dimension (``metrics["dimensions"]`` of the JSON, see
    :class:`mirsim.evaluation.dimensions.DimensionTripletMetrics`). The labels still measure
    retrieval.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mirsim.datasets import Collection
    >>> rng = np.random.default_rng(0); y = np.repeat(np.arange(3), 20)
    >>> c = Collection("toy", pd.DataFrame({"id": range(60), "label": y, "group": range(60)}),
    ...                [None] * 60)
    >>> fs = FeatureSet(c, "toy", rng.standard_normal((60, 4)) + 10 * y[:, None], y,
    ...                 np.arange(60).astype(str), np.arange(60))
    >>> r = run_experiment(fs, "euclidean", "kfold", folds=3)
    >>> r.to_json()["metrics"]["p_at_1"]["mean"]
    1.0
    """
    params = {"seed": seed, **(model_params or {})}
    probe = make_model(model, **params)  # fail early, with the list of valid parameters
    check_supervision(features.collection, model)
    views = _views_for(features, probe)
    if not features.labelled:
        return _held_out_views_experiment(features, model, seed, params, probe, views)
    matrices = dimension_matrices(features)
    if similarities is None and triplets is None and views is None:
        similarities = _learns_dimensions(model, features)
    extra_metrics = _with_dimension_metrics(extra_metrics, matrices, features.X,
                                            features.groups, seed, judgments)
    protocol_result = evaluate_protocol(functools.partial(make_model, model, **params), features.X,
                                        features.labels, features.groups, protocol, folds,
                                        seed, on_fold=on_fold, n_jobs=n_jobs, views=views,
                                        triplets=triplets, extra_metrics=extra_metrics,
                                        fold_scorer=None if judgments is None
                                        else judgments.scorer, variants=variants,
                                        similarities=similarities)
    n_folds = len(protocol_result.per_fold)
    return ExperimentResult(features.collection.name, features.feature, model, protocol, n_folds,
                            seed, protocol_result, len(features.X), params,
                            features.collection.description, features.skipped,
                            probe._resolve_distance(),
                            judgments=None if judgments is None
                            else judgments.result_json(protocol_result.fold_scores))


def _views_for(features: FeatureSet, model: Any) -> np.ndarray | None:
    """The views ``model`` learns from (``None`` if it needs none); a one-line error if the
    features were loaded without them, or with other settings."""
    wanted = view_settings(model)
    if wanted is None:
        return None
    if features.views is None or features.view_settings != wanted:
        what = "without views" if features.views is None else "with other view settings"
        raise MirsimError(f"model '{model.name}' learns from augmented views, but the features "
                          f"were loaded {what}: load them with load_features(..., "
                          f"model='{model.name}', model_params=...)")
    return features.views


def _held_out_views_experiment(features: FeatureSet, model: str, seed: int,
                               params: dict[str, Any], probe: Any, views: np.ndarray
                               ) -> ExperimentResult:
    """The check of a self-supervised model on unlabelled items: fitted on the views of 80 %
    of the items, does a view of a held-out item find its own (clean) item among the
    held-out items? One "fold" per view; the Euclidean distance as reference."""
    import time

    from mirsim.evaluation.own_sound import own_sound_metrics

    n = len(features.X)
    n_test = max(2, int(round(HELD_OUT_SHARE * n)))
    if n - n_test < 2:
        raise DataError(f"{features.collection.name}: {n} usable items are too few for a "
                        f"held-out check without labels (at least 4 are needed)")
    order = np.random.default_rng(seed).permutation(n)
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])

    def check(m: Any) -> tuple[list[dict[str, float]], float]:
        t0 = time.perf_counter()
        m.fit(features.X[train], groups=features.groups[train], views=views[train])
        seconds = time.perf_counter() - t0
        sounds = m.transform(features.X[test])
        return [own_sound_metrics(sounds, m.transform(views[test, j]), m.distance_)
                for j in range(views.shape[1])], seconds

    per_view, seconds = check(probe)
    reference, _ = check(make_model("euclidean"))
    summary = ProtocolResult("held-out-views", reference).summary()
    result = ProtocolResult("held-out-views", per_view, [seconds], probe.n_parameters)
    return ExperimentResult(
        features.collection.name, features.feature, model, "held-out-views", len(per_view),
        seed, result, n, params, features.collection.description, features.skipped,
        probe.distance_, labelled=False, n_held_out=n_test,
        reference={"model": "euclidean",
                   "metrics": {k: summary[k] for k in OWN_SOUND_METRICS}})


def _unlabelled_note(n_held_out: int, n_views: int) -> str:
    """What an unlabelled experiment measured, in one line."""
    return (f"no labels: fitted on the views of the other items, each of {n_views} augmented "
            f"view(s) of {n_held_out} held-out sounds is a query for its own sound among the "
            f"{n_held_out} (chance top-1 {1 / n_held_out:.3f})")


def fit_final_model(features: FeatureSet, model: str, seed: int = 0,
                    model_params: dict[str, Any] | None = None):
    """The model fitted on every usable item (what a run directory keeps): on their views and
    no label for a self-supervised model, on the dimensions' similarity matrices for a
    conditional one on a collection that declares dimensions."""
    params = {"seed": seed, **(model_params or {})}
    check_supervision(features.collection, model)
    fitted = make_model(model, **params)
    views = _views_for(features, fitted)
    if views is not None:
        return fitted.fit(features.X, groups=features.groups, views=views)
    similar = _learns_dimensions(model, features)
    if similar is not None:
        return fitted.fit(features.X, groups=features.groups, similar=similar)
    return fitted.fit(features.X, features.labels, features.groups)


def save_run(run_dir: str | Path, config: dict[str, Any], features: FeatureSet,
             results: list[ExperimentResult], model: Any = None,
             held_out_of: str | None = None) -> Path:
    """Write a run directory: ``config.json``, ``metrics.json``, ``skipped.json``, the model
    (``model/``) if any, and the held-out embeddings (``test_embeddings.npz``) of the result
    of model ``held_out_of`` (default: the only result), when its protocol kept them."""
    from mirsim.artefacts.files import write_json
    from mirsim.experiments.heldout import held_out_embeddings, save_test_embeddings

    run_dir = Path(run_dir)
    write_json(run_dir / "config.json", config)
    write_json(run_dir / "metrics.json", results[0].to_json() if len(results) == 1
               else {r.model: r.to_json() for r in results})
    write_json(run_dir / "skipped.json", features.skipped)
    if model is not None:
        model.save(run_dir / "model")
    result = next((r for r in results if r.model == held_out_of), results[0])
    held = held_out_embeddings(result, features)
    if held is not None:
        save_test_embeddings(run_dir, held)
    return run_dir
