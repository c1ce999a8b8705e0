"""Evaluation: retrieval and triplet metrics over embeddings (protocols build on them)."""

from mirsim.evaluation.metrics import (
    ii_p_at_k,
    knn_accuracy,
    map_at_r,
    p_at_1,
    p_at_k,
    retrieval_metrics,
    triplet_score,
)

__all__ = ["ii_p_at_k", "knn_accuracy", "map_at_r", "p_at_1", "p_at_k", "retrieval_metrics",
           "triplet_score"]
