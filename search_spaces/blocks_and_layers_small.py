"""Section E, small (CPU-sized): block types in a 3-stage ResNet of 0.3M-0.6M parameters.

Not the course's reference ResNet-18 (that is search_spaces/blocks_and_layers.py): the same
Basic vs Bottleneck vs Wide comparison and the same E.1 custom-layer stage, at a size a CPU trains
in minutes. CIFAR-10, 10 epochs, Adam 1e-3.

    python -m orchestrator.run search_spaces/blocks_and_layers_small.py
"""

from orchestrator.study import Study
from search_spaces.blocks_and_layers import block_types_stage, layers_stage
from search_spaces.common import CIFAR10_TRAINING

study = Study(
    name="blocks_and_layers_small",
    trainable="classification",
    description="Residual block types in a small ResNet; custom layers vs analogues (CPU-sized).",
    base={**CIFAR10_TRAINING, "model": "resnet", "channels": (32, 64, 128), "blocks": 1},
    stages=[layers_stage(), block_types_stage("E.2 Block types, small ResNet")],
)
