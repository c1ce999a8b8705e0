"""Training loops. Losses, miners and distances come from pytorch-metric-learning."""

from mirsim.training.trainer import TrainingConfig, seeded, train_embedding

__all__ = ["TrainingConfig", "seeded", "train_embedding"]
