"""Mini-batch training of an embedding network from objects composed by the caller.

:func:`train_embedding` takes the network, the loss, the miner, the sampler, the optimizer and
the scheduler as objects (pytorch-metric-learning's idiom: nothing is built inside the
trainer), and one of three kinds of supervision:

* **labels** ``y``: batches of items (a random permutation each epoch, or the sampler's
  batches); the miner, if any, picks tuples of each batch; ``loss(embeddings, labels, tuples)``;
* **judged triplets** ``triplets`` (``(m, 3)`` item indices: anchor, positive, negative), with
  optional non-negative ``triplet_weights``: batches of triplets (drawn with probability
  proportional to their weight when weights are given), the embeddings of the items they use,
  ``loss(embeddings, indices_tuple=...)``;
* **views** ``views`` (``(n, v, d)`` features of ``v`` augmented versions of each item): each
  item of a batch contributes two different views (the clean features count as one), which
  are each other's only positive (``loss(embeddings, labels=item ids)``: NT-Xent, SimCLR).

A ``head`` (SimCLR's projection head) is trained with the network: the loss sees
``head(network(x))``, while the embedding stays ``network(x)``, the layer before the head.

The AN-GNN paper's settings are what the models pass by default: Proxy-Anchor (alpha 32,
margin 0.1), AdamW (lr 0.05, weight decay 1e-5) over the network *and* the proxies, StepLR
(step 10 epochs, gamma 0.8), 50 epochs, batches of 512.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from mirsim.errors import MirsimError
from mirsim.training.distances import Distance
from mirsim.training.runtime import denormals_flushed, seeded, single_threaded
from mirsim.training.samplers import Sampler


class TrainingDivergedError(MirsimError):
    """The loss became NaN or infinite during training."""


class NothingMinedError(MirsimError):
    """The miner picked no tuple in any batch of the first epoch: nothing would be learned
    (the network would keep its random initialisation)."""


def _nothing_mined(miner: nn.Module) -> NothingMinedError:
    name = type(miner).__name__
    hint = (" (distance-weighted: on wide embeddings every distance starts near 1.41, above "
            "its nonzero_loss_cutoff 1.4: try -p miner.nonzero_loss_cutoff=2)"
            if "DistanceWeighted" in name else "")
    return NothingMinedError(f"the miner {name} picked no tuple in any batch of the first "
                             f"epoch: nothing to learn from{hint}")


def _random_batches(n: int, batch_size: int, generator: torch.Generator) -> list[np.ndarray]:
    order = torch.randperm(n, generator=generator).numpy()
    parts = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if len(parts) > 1 and len(parts[-1]) < 2:  # batch norm cannot train on a single item
        parts = parts[:-1]
    return parts


def _check_distance(component: object, distance: Distance, what: str) -> None:
    """Refuse a loss or miner built for another geometry than the model's distance."""
    pml = getattr(component, "distance", None)
    if pml is None:
        return
    normalised = bool(getattr(pml, "normalize_embeddings", True))
    if normalised != distance.normalised:
        raise MirsimError(f"the {what} compares {'normalised' if normalised else 'unnormalised'} "
                          f"embeddings but the model's distance is {distance.name}")


def _diverged(epoch: int, value: float, optimizer: torch.optim.Optimizer) -> TrainingDivergedError:
    lr = optimizer.param_groups[0].get("lr", float("nan"))
    return TrainingDivergedError(
        f"training diverged in epoch {epoch + 1} (loss {value}); lower the learning rate "
        f"(it is {lr:g}: try -p lr={lr / 10:g}) or check the features for huge values")


def train_embedding(
    network: nn.Module,
    X: np.ndarray,
    y: np.ndarray | None = None,
    *,
    loss: nn.Module,
    distance: Distance,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    miner: nn.Module | None = None,
    sampler: Sampler | None = None,
    epochs: int = 50,
    batch_size: int = 512,
    seed: int = 0,
    triplets: np.ndarray | None = None,
    triplet_weights: np.ndarray | None = None,
    views: np.ndarray | None = None,
    head: nn.Module | None = None,
    on_epoch: Callable[[int, float], bool | None] | None = None,
    device: torch.device | str = "cpu",
) -> list[float]:
    """Train ``network`` so that the geometry ``distance`` of its outputs follows the supervision.

    Parameters
    ----------
    network : torch.nn.Module
        Maps a ``(batch, d_in)`` float tensor to embeddings. Graph networks build their graph
        over the batch.
    X : ndarray of shape (n, d_in)
        Standardised features.
    y : ndarray of shape (n,), optional
        Integer class ids ``0..C-1`` (label supervision).
    loss : torch.nn.Module
        ``loss(embeddings, labels=None, indices_tuple=None)``, e.g. a pytorch-metric-learning
        loss built by a :class:`mirsim.training.losses.Loss`. Its own parameters (proxies)
        must be in ``optimizer``.
    distance : mirsim.training.distances.Distance
        The model's geometry; a loss or miner built for another one is refused.
    optimizer, scheduler
        Built by the caller over the network's (and the loss's) parameters; the scheduler is
        stepped once per epoch.
    miner : torch.nn.Module, optional
        ``miner(embeddings, labels) -> indices_tuple`` (label supervision only).
    sampler : mirsim.training.samplers.Sampler, optional
        Draws each epoch's batches from the labels (default: a random permutation).
    epochs, batch_size, seed : int
    triplets : int ndarray of shape (m, 3), optional
        Judged triplets (anchor, positive, negative) as item indices, instead of ``y``.
    triplet_weights : ndarray of shape (m,), optional
    views : ndarray of shape (n, v, d_in), optional
        Augmented views of every item, instead of ``y`` (self-supervised).
    head : torch.nn.Module, optional
        Projection head between the network and the loss, used in training only; its
        parameters must be in ``optimizer``.
    on_epoch : callable, optional
        Called with ``(epoch, mean loss)`` after each epoch; returning ``True`` stops training.
    device : torch.device or str
        Where the network, the head and the loss already are (the caller moves them, before
        building the optimizer); each batch is moved there, the data stay on the CPU.

    Returns
    -------
    list of float
        Mean training loss of each epoch.

    Raises
    ------
    TrainingDivergedError
        The loss became NaN or infinite (one line, with what to change).

    Examples
    --------
    >>> from mirsim.registries import DISTANCES, LOSSES
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 4)).astype(np.float32); y = (X[:, 0] > 0).astype(int)
    >>> net, cosine = torch.nn.Linear(4, 8), DISTANCES.make("cosine")
    >>> loss = LOSSES.make("triplet", margin=0.2).build(n_classes=2, embedding_dim=8,
    ...                                                 distance=cosine)
    >>> opt = torch.optim.Adam(net.parameters(), lr=0.01)
    >>> hist = train_embedding(net, X, y, loss=loss, distance=cosine, optimizer=opt, epochs=5)
    >>> len(hist), hist[-1] < hist[0]
    (5, True)
    """
    modes = [name for name, v in (("y", y), ("triplets", triplets), ("views", views))
             if v is not None]
    if len(modes) != 1:
        raise ValueError(f"give exactly one of y, triplets or views (got {modes or 'none'})")
    if miner is not None and y is None:
        raise MirsimError("a miner picks tuples from class labels: it cannot be used with "
                          "judged triplets or views")
    _check_distance(loss, distance, "loss")
    _check_distance(miner, distance, "miner")
    Xt = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float32)
    yt = None if y is None else torch.as_tensor(np.asarray(y), dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    history: list[float] = []
    trained = network if head is None else nn.Sequential(network, head)
    with seeded(seed), single_threaded(), denormals_flushed():
        trained.train()
        loss.train()
        for epoch in range(epochs):
            if yt is not None:
                steps = _label_steps(trained, Xt, yt, loss, miner, sampler, batch_size,
                                     seed + epoch, generator, device)
            elif triplets is not None:
                steps = _triplet_steps(trained, Xt, np.asarray(triplets), triplet_weights,
                                       loss, batch_size, generator, device)
            else:
                steps = _view_steps(trained, Xt, np.asarray(views, dtype=np.float32), loss,
                                    batch_size, generator, device)
            total, count, mined = 0.0, 0, 0
            for value, size, n_tuples in steps:
                mined += n_tuples
                if not torch.isfinite(value):
                    raise _diverged(epoch, float(value.detach()), optimizer)
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
                total += float(value.detach()) * size
                count += size
            if epoch == 0 and miner is not None and yt is not None and mined == 0:
                raise _nothing_mined(miner)
            if scheduler is not None:
                scheduler.step()
            history.append(total / max(count, 1))
            if on_epoch and on_epoch(epoch, history[-1]):
                break
    trained.eval()
    return history


def _label_steps(network, X, y, loss, miner, sampler, batch_size, seed, generator, device):
    batches = (sampler.batches(y.numpy(), batch_size, seed) if sampler is not None
               else _random_batches(len(X), batch_size, generator))
    for idx in batches:
        idx = torch.as_tensor(idx)
        emb, labels = network(X[idx].to(device)), y[idx].to(device)
        tuples = miner(emb, labels) if miner is not None else None
        n_tuples = 0 if tuples is None else int(len(tuples[0]))
        yield loss(emb, labels, tuples), len(idx), n_tuples


def _triplet_steps(network, X, triplets, weights, loss, batch_size, generator, device):
    if triplets.ndim != 2 or triplets.shape[1] != 3 or len(triplets) == 0:
        raise ValueError(f"triplets must be a non-empty (m, 3) index array, got {triplets.shape}")
    m = len(triplets)
    if weights is None:
        order = torch.randperm(m, generator=generator).numpy()
    else:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        order = torch.multinomial(w, m, replacement=True, generator=generator).numpy()
    per_batch = max(1, batch_size // 3)
    for start in range(0, m, per_batch):
        chosen = triplets[order[start:start + per_batch]]
        items, local = np.unique(chosen, return_inverse=True)
        if len(items) < 2:
            continue
        local = torch.as_tensor(local.reshape(chosen.shape)).to(device)
        emb = network(X[torch.as_tensor(items)].to(device))
        yield loss(emb, None, (local[:, 0], local[:, 1], local[:, 2])), len(chosen), 0


def _view_steps(network, X, views, loss, batch_size, generator, device):
    all_views = torch.cat([X[:, None, :], torch.as_tensor(views)], dim=1)  # clean = view 0
    n, v = all_views.shape[:2]
    if v < 2:
        raise ValueError("self-supervised training needs at least one augmented view per item")
    for idx in _random_batches(n, batch_size, generator):
        idx = torch.as_tensor(idx)
        first = torch.randint(v, (len(idx),), generator=generator)
        second = (first + torch.randint(1, v, (len(idx),), generator=generator)) % v
        emb = torch.cat([network(all_views[idx, first].to(device)),
                         network(all_views[idx, second].to(device))])
        ids = torch.arange(len(idx), device=emb.device).repeat(2)
        yield loss(emb, ids), len(idx), 0
