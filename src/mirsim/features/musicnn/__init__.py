"""musicnn (Pons & Serra 2019) and its VGG baseline, ported to PyTorch.

The weights are the TensorFlow 1 checkpoints that the PyPI package ``musicnn`` 0.1.0 ships;
mirsim reads them with its own checkpoint reader and never needs TensorFlow
(``pip install --no-deps musicnn==0.1.0``, or ``MIRSIM_MUSICNN_DIR``).

Modules: :mod:`.checkpoint` (TF bundle reader), :mod:`.musicnn_net` and :mod:`.vgg_net`
(architectures), :mod:`.tflayers` (TF ↔ torch layer conventions), :mod:`.weights` (finding and
loading checkpoints), :mod:`.pipeline` (16 kHz log-mel patches), :mod:`.tags` (vocabularies),
:mod:`.extractor` (features and tagging). The port matches the original's outputs
(``tests/test_musicnn.py``, against ``scripts/make_musicnn_fixture.py``).
"""

from mirsim.features.musicnn.checkpoint import CheckpointError, CheckpointReader
from mirsim.features.musicnn.extractor import (
    MusicnnFeature,
    MusicnnMSD,
    MusicnnMTT,
    model_outputs,
    top_tags,
)
from mirsim.features.musicnn.weights import (
    MODELS,
    MusicnnNotFoundError,
    find_checkpoint,
    load_network,
)

__all__ = ["MODELS", "CheckpointError", "CheckpointReader", "MusicnnFeature", "MusicnnMSD",
           "MusicnnMTT", "MusicnnNotFoundError", "find_checkpoint", "load_network",
           "model_outputs", "top_tags"]
