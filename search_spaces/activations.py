"""Activations (section A.4): ReLU, LeakyReLU, ELU, GELU in one ResNet, chosen by name.

Compares convergence per epoch and final validation accuracy, so every activation trains to
the end (fifo).

    python -m orchestrator.run search_spaces/activations.py
"""

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import COURSE_TRAINING, RESNET_SMALL, TINY_IMAGENET_10

study = Study(
    name="activations",
    trainable="classification",
    description="Which activation trains the ResNet best on 10 Tiny ImageNet classes.",
    base={**TINY_IMAGENET_10, **COURSE_TRAINING, **RESNET_SMALL},
    constraints={"max_params": 5_000_000, "max_channels": 512},
    stages=[
        Stage(
            "activations",
            title="A.4 Activations",
            label="A.4",
            scheduler="fifo",
            space={"activation": tune.grid_search(["relu", "leaky_relu", "elu", "gelu"])},
            evaluate=True,
        ),
    ],
)
