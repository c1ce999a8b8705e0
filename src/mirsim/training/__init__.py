"""Training loops. Losses, miners and distances come from pytorch-metric-learning."""

from mirsim.training.trainer import (
    TrainingConfig,
    denormals_flushed,
    seeded,
    single_threaded,
    train_embedding,
    without_torch_reregistration_warning,
)

__all__ = ["TrainingConfig", "denormals_flushed", "seeded", "single_threaded", "train_embedding",
           "without_torch_reregistration_warning"]
