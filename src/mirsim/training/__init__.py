"""Training loops. Losses, miners and distances come from pytorch-metric-learning."""

from mirsim.training.trainer import TrainingConfig, seeded, single_threaded, train_embedding

__all__ = ["TrainingConfig", "seeded", "single_threaded", "train_embedding"]
