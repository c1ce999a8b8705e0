"""The JSON shapes of the web API (they also document it in ``/docs`` and ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Item(BaseModel):
    """One indexed sound; ``id`` is its manifest row."""

    id: int = Field(..., description="Manifest row of the sound (0-based).")
    path: str = Field(..., description="File path relative to the library root.")
    name: str = Field(..., description="File name.")
    label: str
    group: str
    duration: float | None = Field(None, description="Seconds (null if unknown).")


class Neighbor(Item):
    """A search result: an item with its rank and distance to the query."""

    rank: int = Field(..., description="1 for the nearest.")
    distance: float = Field(..., description="Distance between embeddings: Euclidean (not "
                                             "squared), or cosine (1 - cos) for an index "
                                             "whose model trained on cosine similarity.")


class NeighborsResponse(BaseModel):
    item: Item
    k: int
    metric: str = "euclidean (not squared)"
    excluded: str = Field(..., description="What was left out of the results.")
    neighbors: list[Neighbor]


class AspectNeighbor(Neighbor):
    """A result of an aspect query: ``distance`` is the weighted sum of its aspects'."""

    aspect_distances: dict[str, float] = Field(..., description="Cosine distance (1 - cos) "
                                                                "of each aspect, unweighted.")


class AspectNeighborsResponse(BaseModel):
    item: Item
    k: int
    weights: dict[str, float] = Field(..., description="Weight of every aspect (those not "
                                                       "named weigh 0).")
    search: str = Field(..., description="exact (a scan of every sound) or approximate "
                                         "(candidates of the aspects' FAISS index, re-ranked "
                                         "exactly).")
    neighbors: list[AspectNeighbor]


class QueryResponse(BaseModel):
    query: str = Field(..., description="Name of the uploaded file.")
    in_index: bool = Field(..., description="The sound itself is in the index: its stored "
                                            "embedding was used and it is left out of the "
                                            "results.")
    item_ids: list[int] = Field(..., description="Rows holding the uploaded sound (copies "
                                                 "share its content).")
    k: int
    metric: str = "euclidean (not squared)"
    neighbors: list[Neighbor]


class SearchResponse(BaseModel):
    query: str
    total: int = Field(..., description="Number of matching sounds (only `limit` listed).")
    items: list[Item]


class MapResponse(BaseModel):
    """Columns: item ``ids[j]`` is drawn at ``(x[j], y[j])`` with label ``labels[label[j]]``."""

    method: str
    aspect: str | None = Field(None, description="The aspect whose sub-space is mapped "
                                                 "(null: the whole embedding).")
    n: int
    from_cache: bool
    seconds: float = Field(..., description="Time taken to compute or read the map.")
    labels: list[str] = Field(..., description="Distinct labels, sorted.")
    ids: list[int]
    x: list[float] = Field(..., description="In [-1, 1].")
    y: list[float] = Field(..., description="In [-1, 1].")
    label: list[int] = Field(..., description="Index into `labels` of each item.")
    paths: list[str] = Field(..., description="File path of each item, relative to the root.")


class InfoResponse(BaseModel):
    """``SoundIndex.info()`` plus the server's own settings."""

    model_config = {"extra": "allow"}

    n_items: int
    labels: dict[str, int]
    server: dict[str, Any]


class Metric(BaseModel):
    name: str = Field(..., description="Pass as `?metric=` to any other call.")
    feature: str
    model: str
    run_dir: str | None = None
    aspects: list[str]
    instruments: list[str] = []


class MetricsResponse(BaseModel):
    """The metrics served, each an index of the same library."""

    metrics: list[Metric]
    default: str


class ErrorResponse(BaseModel):
    detail: str = Field(..., description="One line saying what went wrong.")
