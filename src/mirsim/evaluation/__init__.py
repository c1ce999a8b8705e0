"""Evaluation: retrieval and triplet metrics over embeddings (protocols build on them).

The names below are imported when first used (numpy costs a fifth of a second: listing the
registered protocols must not pay it).
"""

from mirsim._lazy import lazy_exports

__all__ = ["centroid_label_auc", "ii_p_at_k", "knn_accuracy", "map_at_r", "p_at_1", "p_at_k",
           "recall_at_k", "retrieval_metrics", "triplet_score"]
__getattr__, __dir__ = lazy_exports(__name__, {name: ".metrics" for name in __all__})
