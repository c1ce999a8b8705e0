"""Evaluation: retrieval and triplet metrics over embeddings (protocols build on them)."""

from mirsim.evaluation.metrics import (
    centroid_label_auc,
    ii_p_at_k,
    knn_accuracy,
    map_at_r,
    p_at_1,
    p_at_k,
    recall_at_k,
    retrieval_metrics,
    triplet_score,
)

__all__ = ["centroid_label_auc", "ii_p_at_k", "knn_accuracy", "map_at_r", "p_at_1", "p_at_k",
           "recall_at_k", "retrieval_metrics", "triplet_score"]
