"""The tutorial's linear metrics from scikit-learn: LDA and NCA as metric models.

Both learn a linear map ``L`` (``n_components x n_features``) of the standardised features
and compare embeddings ``L x`` by Euclidean distance, as the first demo of the ISMIR 2020
tutorial "Metric learning for MIR" (McFee, Lee & Nam) does, beside LMNN
(:mod:`mirsim.models.lmnn`). scikit-learn fits them; the model keeps only ``L`` (the
``L_`` attribute, a float32 tensor, as LMNN's), which ``save`` writes with safetensors, so a
loaded model embeds exactly as the fitted one did and no scikit-learn object is pickled.

Both learn from labels only: neither objective has a form for judged triplets.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from mirsim.errors import DataError, MirsimError
from mirsim.models.base import MetricModel
from mirsim.params import Interval, Nullable, Options, Satisfies, estimator, param
from mirsim.registries import MODELS

__all__ = ["DiagonalFisherModel", "LDAModel", "LinearMapModel", "NCAModel"]


def _shrinkage_ok(value: Any) -> bool:
    return value is None or value == "auto" or Interval(float, 0, 1).accepts(value)


def _check_finite(X: Any, name: str) -> None:
    """One-line refusal of NaN or infinite features (scikit-learn's message is a paragraph)."""
    try:
        values = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        return  # not numbers: validate_data says so
    if not np.all(np.isfinite(values)):
        raise DataError(f"{name}: the features contain NaN or infinity")


@estimator
class LinearMapModel(MetricModel):
    """A metric model whose embedding is ``x -> L x`` on standardised features, compared by
    Euclidean distance: ``L_`` (a float32 tensor) is its state, saved as ``<name>.L``.

    Subclasses learn ``L`` in ``_learn_map`` (LDA, NCA: a scikit-learn estimator) or
    override ``_fit_standardised`` (LMNN).
    """

    supervision = ("labels",)
    default_distance = "euclidean"

    def fit(self, X: Any, y: Any = None, groups: Any = None, **supervision: Any
            ) -> LinearMapModel:
        """Learn the standardisation and ``L`` from labels (see :meth:`MetricModel.fit`)."""
        _check_finite(X, self.name)
        return super().fit(X, y, groups, **supervision)

    def transform(self, X: Any) -> np.ndarray:
        """Embeddings ``L x`` of the standardised rows of ``X`` (float32)."""
        self._require_fitted()
        _check_finite(X, self.name)
        return super().transform(X)

    def _fit_standardised(self, X: np.ndarray, y: np.ndarray, groups, **supervision) -> None:
        if len(np.unique(y)) < 2:
            raise DataError(f"{self.name} needs at least two labels (got one)")
        L = self._learn_map(X.astype(np.float64), y)
        self.L_ = torch.from_numpy(np.ascontiguousarray(L, dtype=np.float32))

    def _learn_map(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _embed(self, X: np.ndarray) -> np.ndarray:
        # in float64: a float32 product's rounding depends on where a row falls in BLAS's
        # blocks, so the same row could embed differently in another batch (by 1e-7)
        L = self.L_.numpy().astype(np.float64)
        return (np.asarray(X, dtype=np.float64) @ L.T).astype(np.float32)

    @property
    def n_parameters(self) -> int:
        """Entries of ``L``."""
        self._require_fitted()
        return int(self.L_.numel())

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"{self.name}.L": self.L_}

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.L_ = tensors[f"{self.name}.L"].to(torch.float32).clone()


@MODELS.register
@estimator
class LDAModel(LinearMapModel):
    """Linear discriminant analysis as a metric: the projection onto the discriminant axes.

    scikit-learn's :class:`~sklearn.discriminant_analysis.LinearDiscriminantAnalysis` finds
    the axes that maximise between-label variance against within-label variance; the
    embedding is the projection of the standardised features onto its first
    ``n_components`` axes (``transform``), compared by Euclidean distance. The ``eigen``
    solver scales the axes so that the within-label covariance becomes the identity, so the
    distance is the Mahalanobis distance of the pooled within-label covariance, restricted to
    the discriminant subspace. (The ``svd`` solver's ``transform`` also subtracts the mean;
    a shift changes no distance, so the model keeps the map alone.)

    Default: solver ``eigen`` with Ledoit-Wolf shrinkage (``shrinkage="auto"``). Data sets of
    a few dozen sounds have few items per label against many features (78 sounds, 19 labels,
    40 MFCCs or 775 JTFS coefficients), so the within-label covariance is poorly estimated or
    singular: ``svd`` and unshrunk ``eigen`` then fit directions of noise, while shrinkage
    towards a scaled identity keeps it invertible, chosen by the Ledoit-Wolf formula without
    tuning. Measured on the 78 Cyberlioz sounds (5-fold 1-NN accuracy on standardised
    features, seed 0): MFCC, ``svd`` 0.152, unshrunk ``eigen`` 0.152, ``eigen`` + ``auto``
    0.336 (Euclidean 0.361); JTFS, ``svd`` 0.448, ``eigen`` + ``auto`` 0.412, unshrunk
    ``eigen`` fails (singular covariance). ``svd`` wins slightly on JTFS but collapses on MFCC;
    shrinkage never does.
    ``lsqr`` has no ``transform`` and is not offered.

    Parameters
    ----------
    solver : {"eigen", "svd"}
        scikit-learn's solver.
    shrinkage : "auto", float in [0, 1] or None
        Covariance shrinkage (``eigen`` only): ``auto`` is Ledoit-Wolf's.
    n_components : int, optional
        Discriminant axes kept; ``None``: as many as there are (``n_labels - 1``, at most the
        number of features).
    seed : int
        Unused (LDA is deterministic); kept for a uniform command line.

    Attributes
    ----------
    L_ : torch.Tensor of shape (n_components, n_features)
        The discriminant axes (rows), in the standardised feature space.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20); X = rng.standard_normal((60, 5)); X[:, 0] += 3 * y
    >>> model = LDAModel().fit(X, y)
    >>> model.transform(X).shape, model.n_parameters  # 3 labels: 2 axes of 5 features
    ((60, 2), 10)
    """

    name = "lda"
    display_name = "LDA"

    solver: str = param("eigen", Options(("eigen", "svd")), "scikit-learn solver")
    shrinkage: Any = param("auto", Satisfies(_shrinkage_ok, "auto, none or a number in [0, 1]"),
                           "covariance shrinkage (eigen solver): auto is Ledoit-Wolf")
    n_components: int | None = param(None, Nullable(Interval(int, 1, None)),
                                     "discriminant axes kept (default: labels - 1)")
    seed: int = param(0, Interval(int, 0, None), "unused (LDA is deterministic)")

    def _learn_map(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        if self.solver == "svd" and self.shrinkage is not None:
            raise MirsimError("lda: the svd solver takes no shrinkage (use -p shrinkage=none "
                              "or the eigen solver)")
        most = min(len(np.unique(y)) - 1, X.shape[1])
        if self.n_components is not None and self.n_components > most:
            raise MirsimError(f"lda: n_components must be at most {most} here (labels - 1, "
                              f"at most the features), got {self.n_components}")
        lda = LinearDiscriminantAnalysis(solver=self.solver, shrinkage=self.shrinkage,
                                         n_components=self.n_components)
        with warnings.catch_warnings():  # "variables are collinear" (svd): expected here
            warnings.simplefilter("ignore", UserWarning)
            lda.fit(X, y)
        k = self.n_components or most
        return lda.scalings_[:, :k].T


@MODELS.register
@estimator
class DiagonalFisherModel(LinearMapModel):
    """A diagonal metric: every standardised feature weighted by how well it separates the
    labels (its Fisher ratio), no rotation.

    The weight of feature ``j`` is ``w_j = B_j / ((1 - shrinkage) W_j + shrinkage mean(W))``,
    ``B_j`` the variance of the label means (weighted by label size) and ``W_j`` the pooled
    within-label variance; the embedding is ``sqrt(w) * x``, so the squared distance is
    ``sum_j w_j (x_j - x'_j)^2``. Shrinking the denominator towards the mean within-label
    variance keeps a feature that one small label happens to hold constant from taking all the
    weight. It has one parameter per feature against LDA's ``(labels - 1)`` per feature: the
    small-data end of the metric family. (scikit-learn and metric-learn have no diagonal
    metric learner; the closed form is a few lines.)

    Parameters
    ----------
    shrinkage : float in [0, 1]
        Share of the mean within-label variance in each denominator (0.5, set a priori).
    seed : int
        Unused (deterministic); kept for a uniform command line.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 30); X = rng.standard_normal((60, 3)); X[:, 0] += 4 * y
    >>> w = np.diag(DiagonalFisherModel().fit(X, y).L_.numpy()) ** 2
    >>> int(np.argmax(w)), bool(w[0] > 10 * w[1:].max())  # the separating feature dominates
    (0, True)
    """

    name = "diagonal"
    display_name = "Diagonal (Fisher) metric"

    shrinkage: float = param(0.5, Interval(float, 0, 1), "share of the mean within-label "
                                                         "variance in the denominators")
    seed: int = param(0, Interval(int, 0, None), "unused (deterministic)")

    def _learn_map(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        labels, index = np.unique(y, return_inverse=True)
        means = np.stack([X[index == k].mean(axis=0) for k in range(len(labels))])
        share = np.bincount(index) / len(X)
        centre = share @ means
        between = share @ (means - centre) ** 2
        within = ((X - means[index]) ** 2).mean(axis=0)
        denominator = (1 - self.shrinkage) * within + self.shrinkage * within.mean()
        weights = between / np.maximum(denominator, np.finfo(np.float64).tiny)
        return np.diag(np.sqrt(weights))

    @property
    def n_parameters(self) -> int:
        """One weight per feature."""
        self._require_fitted()
        return int(self.L_.shape[0])


@MODELS.register
@estimator
class NCAModel(LinearMapModel):
    """Neighbourhood components analysis (Goldberger et al. 2004) as a metric.

    scikit-learn's :class:`~sklearn.neighbors.NeighborhoodComponentsAnalysis` learns ``L``
    maximising the expected leave-one-out accuracy of a stochastic nearest-neighbour
    classifier (softmax over negative squared distances ``|L x_i - L x_j|^2``) with L-BFGS;
    the embedding is ``L x`` of the standardised features, compared by Euclidean distance.
    Each iteration costs ``n^2`` distances: about a second for 4,000 items on 2 cores.

    Parameters
    ----------
    n_components : int, optional
        Rows of ``L``; ``None``: as many as features.
    init : {"auto", "pca", "lda", "identity", "random"}
        scikit-learn's initialisation of ``L`` (``auto``: LDA, PCA or identity by
        ``n_components``).
    max_iter : int
        L-BFGS iterations at most.
    tol : float
        Convergence tolerance of L-BFGS.
    seed : int
        ``random_state`` of the ``random`` initialisation.

    Attributes
    ----------
    L_ : torch.Tensor of shape (n_components, n_features)
    n_iter_ : int
        Iterations L-BFGS ran.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 20); X = rng.standard_normal((40, 3)); X[:, 0] += 3 * y
    >>> model = NCAModel(max_iter=20).fit(X, y)
    >>> model.transform(X).shape, model.n_parameters
    ((40, 3), 9)
    """

    name = "nca"
    display_name = "NCA"

    n_components: int | None = param(None, Nullable(Interval(int, 1, None)),
                                     "rows of L (default: as many as features)")
    init: str = param("auto", Options(("auto", "pca", "lda", "identity", "random")),
                      "initialisation of L")
    max_iter: int = param(50, Interval(int, 1, None), "L-BFGS iterations at most")
    tol: float = param(1e-5, Interval(float, 0, None), "convergence tolerance")
    seed: int = param(0, Interval(int, 0, None), "seed of the random initialisation")

    def _learn_map(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neighbors import NeighborhoodComponentsAnalysis

        if self.n_components is not None and self.n_components > X.shape[1]:
            raise MirsimError(f"nca: n_components must be at most the {X.shape[1]} features, "
                              f"got {self.n_components}")
        nca = NeighborhoodComponentsAnalysis(n_components=self.n_components, init=self.init,
                                             max_iter=self.max_iter, tol=self.tol,
                                             random_state=self.seed)
        with warnings.catch_warnings():  # max_iter reached: n_iter_ says so
            warnings.simplefilter("ignore", ConvergenceWarning)
            nca.fit(X, y)
        self.n_iter_ = int(nca.n_iter_)
        return nca.components_

    def _extra_config(self) -> dict[str, Any]:
        return {"n_iter": self.n_iter_}

    def _load_extra_config(self, config: dict[str, Any]) -> None:
        self.n_iter_ = int(config.get("n_iter", 0))
