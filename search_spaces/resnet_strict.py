"""Section A, variant 2 (the stricter course): <= 5M parameters, <= 5 residual blocks,
Conv-BN-ReLU base layers, MaxPool right after the first residual block, first layer 64 or 128
channels, no layer above 256 channels, Dropout 0.1-0.3 in every residual block.

Stages (labels A2.1-A2.5): baseline (20 epochs) -> channel configurations -> dropout ->
activations -> final model with the test-set report. Configurations that break a rule are listed
as infeasible. Every comparison stage trains each variant to the end (fifo).
"""

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import (
    COURSE_TRAINING,
    TINY_IMAGENET_10,
    activations_stage,
    final_stage,
)

STRICT_RESNET = {
    "model": "resnet",
    "stem": "cifar",
    "stem_channels": 64,
    "channels": (64, 128, 256),
    "blocks": (1, 2, 2),
    "maxpool_after_first_block": True,
    "dropout": 0.1,
    "activation": "relu",
}

# The variant's rules; a configuration that breaks one is not a variant-2 candidate.
STRICT_RULES = {
    "max_params": 5_000_000,
    "max_residual_blocks": 5,
    "maxpool_after_first_block": True,
    "first_layer_widths": [64, 128],
    "max_channels": 256,
    "dropout_range": [0.1, 0.3],
    "activations": ["relu", "leaky_relu", "elu", "gelu"],
}
# The dropout values variant 2 allows (its 0.1-0.3 rule).
STRICT_DROPOUTS = [0.1, 0.2, 0.3]

study = Study(
    name="resnet_strict",
    trainable="classification",
    description="The stricter course variant: 5 residual blocks, <= 256 channels, dropout.",
    base={**TINY_IMAGENET_10, **COURSE_TRAINING, **STRICT_RESNET},
    constraints=STRICT_RULES,
    stages=[
        Stage("baseline", title="A2.1 Baseline", label="A2.1", scheduler="fifo"),
        Stage(
            "channels",
            title="A2.2 Channel configurations",
            label="A2.2",
            scheduler="fifo",
            space={
                ("stem_channels", "channels", "blocks"): tune.grid_search(
                    [
                        (64, (64, 128, 256), (1, 2, 2)),
                        (128, (128, 128, 256), (1, 2, 2)),
                        (64, (64, 128, 256, 256), (1, 1, 2, 1)),
                        (64, (64, 128, 256, 512), (1, 1, 1, 1)),  # breaks the 256-channel rule
                    ]
                ),
            },
        ),
        Stage(
            "dropout",
            title="A2.3 Dropout in every residual block",
            label="A2.3",
            scheduler="fifo",
            space={"dropout": tune.grid_search(STRICT_DROPOUTS)},
        ),
        activations_stage("A2.4"),
        final_stage("A2.5"),
    ],
)
