"""Section E: residual block types and custom layers, each against its standard analogue.

E.2: Basic (two 3x3) vs Bottleneck (1x1-3x3-1x1) vs Wide blocks in the same 3-stage ResNet.
E.1: a small CNN with GatedConv2d vs Conv2d, L2Pool2d vs max-pool, squeeze-and-excitation vs
none, Swish vs ReLU (the layers themselves are tested against reference computations in
tests/test_layers.py). On CIFAR-10; compare accuracy, parameters, time and stability.

    python -m orchestrator.run search_spaces/blocks_and_layers.py
"""

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import CIFAR10_TRAINING

study = Study(
    name="blocks_and_layers",
    trainable="classification",
    description="Residual block types; custom layers vs their standard analogues.",
    base={
        **CIFAR10_TRAINING,
        "model": "resnet",
        "channels": (32, 64, 128),
        "blocks": 1,
    },
    stages=[
        Stage(
            "block_types",
            title="E.2 Block types",
            label="E2",
            scheduler="fifo",
            space={"block": tune.grid_search(["basic", "bottleneck", "wide"])},
        ),
        Stage(
            "layers",
            title="E.1 Custom layers",
            label="E1",
            inherit="base",
            scheduler="fifo",
            config={"model": "simple_cnn", "channels": (32, 64, 128)},
            space={
                ("conv", "pool", "attention", "activation"): tune.grid_search(
                    [
                        ("standard", "max", "none", "relu"),
                        ("gated", "max", "none", "relu"),
                        ("standard", "l2", "none", "relu"),
                        ("standard", "max", "se", "relu"),
                        ("standard", "max", "none", "swish"),
                    ]
                )
            },
        ),
    ],
)
