"""Dropout inside every residual block (strict variant): p = 0.1, 0.2, 0.3, plus 0 as reference.

p = 0 breaks the strict variant's 0.1-0.3 rule and is listed as infeasible; read overfitting off
the train-vs-val curves of the others.
"""

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import COURSE_TRAINING, TINY_IMAGENET_10
from search_spaces.resnet_strict import STRICT_RESNET

study = Study(
    name="dropout",
    trainable="classification",
    description="Dropout in every residual block of the strict-variant ResNet.",
    base={**TINY_IMAGENET_10, **COURSE_TRAINING, **STRICT_RESNET},
    constraints={"max_params": 5_000_000, "max_channels": 256, "dropout_range": [0.1, 0.3]},
    stages=[
        Stage(
            "dropout",
            title="Dropout",
            label="3.2",
            scheduler="fifo",
            space={"dropout": tune.grid_search([0.0, 0.1, 0.2, 0.3])},
        ),
    ],
)
