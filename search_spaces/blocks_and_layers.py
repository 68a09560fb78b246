"""Section E with the reference models: custom layers, then residual block types.

E.1: a small CNN with GatedConv2d vs Conv2d, L2Pool2d vs max-pool, squeeze-and-excitation vs
none, Swish vs ReLU (the layers themselves are tested against reference computations in
tests/test_layers.py, and the report checks each trained layer the same way).
E.2: the course's ResNet-18 (CIFAR stem, [2, 2, 2, 2] blocks, widths 64-512) with Basic blocks
(two 3x3, 11,173,962 parameters) vs Bottleneck blocks (1x1-3x3-1x1, expansion 4, 13,958,986, the
sample solution's "Bottleneck variant") vs Wide blocks (inner width x2, 22,163,274) as the extra.
On CIFAR-10 at the course's budget (10 epochs, Adam 1e-3); compare accuracy, parameters, time
and stability.

The E.2 stage needs a GPU; search_spaces/blocks_and_layers_small.py is the CPU-sized version.

    python -m orchestrator.run search_spaces/blocks_and_layers.py
"""

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import CIFAR10_TRAINING
from trainables.models.reference import reference

BLOCK_TYPES = ["basic", "bottleneck", "wide"]


def block_types_stage(title: str) -> Stage:
    return Stage(
        "block_types",
        title=title,
        label="E2",
        inherit="base",  # the study's ResNet, not E.1's small CNN before it
        scheduler="fifo",
        space={"block": tune.grid_search(BLOCK_TYPES)},
    )


def layers_stage() -> Stage:
    """E.1: each custom layer against its standard analogue in one small CNN."""
    return Stage(
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
    )


study = Study(
    name="blocks_and_layers",
    trainable="classification",
    description="Residual block types in the reference ResNet-18; custom layers vs analogues.",
    base={**CIFAR10_TRAINING, **reference("ModelWithBasicBlocks (CIFAR)").model},
    # In the assignment's order: E.1 custom layers, then E.2 block types.
    stages=[layers_stage(), block_types_stage("E.2 Block types, reference ResNet-18")],
)
