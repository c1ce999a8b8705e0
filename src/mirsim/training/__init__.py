"""Training: the loop (:mod:`~mirsim.training.trainer`) and the pieces composed into it,
each registered by name: losses (:mod:`~mirsim.training.losses`), miners
(:mod:`~mirsim.training.miners`), distances (:mod:`~mirsim.training.distances`) and samplers
(:mod:`~mirsim.training.samplers`). Attributes are imported on first use."""

from mirsim._lazy import lazy_exports

_EXPORTS = {
    "train_embedding": ".trainer", "TrainingDivergedError": ".trainer",
    "seeded": ".runtime", "single_threaded": ".runtime", "denormals_flushed": ".runtime",
    "without_torch_reregistration_warning": ".runtime",
    "Loss": ".losses", "Miner": ".miners", "Distance": ".distances", "Sampler": ".samplers",
    "Component": ".components", "resolve": ".components",
    "resolve_device": ".devices", "is_device_name": ".devices", "DEVICE_CHOICES": ".devices",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
