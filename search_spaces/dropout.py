"""Dropout inside every residual block (variant 2, section A2.3): p = 0.1, 0.2, 0.3, against a
no-dropout reference.

A2.3-ref trains the same strict-variant ResNet with p = 0, so the report has the curve without
dropout to read overfitting against. It is a reference, not a variant-2 candidate (variant 2
requires 0.1-0.3 in every block): it is its own stage, and the dropout stage does not inherit
from it. The study therefore checks the variant's other rules only; the 0.1-0.3 rule is kept by
the dropout stage's grid itself (STRICT_DROPOUTS).

    python -m orchestrator.run search_spaces/dropout.py
"""

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import COURSE_TRAINING, TINY_IMAGENET_10
from search_spaces.resnet_strict import STRICT_DROPOUTS, STRICT_RESNET, STRICT_RULES

study = Study(
    name="dropout",
    trainable="classification",
    description="Dropout in every residual block of the strict-variant ResNet, against p = 0.",
    base={**TINY_IMAGENET_10, **COURSE_TRAINING, **STRICT_RESNET},
    constraints={k: v for k, v in STRICT_RULES.items() if k != "dropout_range"},
    stages=[
        Stage(
            "reference",
            title="A2.3 Reference without dropout (not a candidate)",
            label="A2.3-ref",
            inherit="base",
            scheduler="fifo",
            config={"dropout": 0.0},
        ),
        Stage(
            "dropout",
            title="A2.3 Dropout in every residual block",
            label="A2.3",
            inherit="base",  # the same starting point as the reference, never the reference
            scheduler="fifo",
            space={"dropout": tune.grid_search(STRICT_DROPOUTS)},
        ),
    ],
)
