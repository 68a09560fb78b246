"""Section B.3: a U-Net whose encoder is the trained 128x128 classifier, against the base U-Net.

Run `classifier128.py` first: `encoder=FromStudy("classifier128")` takes its best trial's
architecture and checkpoint (GAP/FC head removed; its stages feed the skips through 1x1 adapter
convs, see `describe()` in trainables/models/unet_backbone.py).

Three stages, each evaluated on the test split, give the assignment's table:
- B.3-base: the base U-Net of B.2 (unet_rocks.BASE_UNET), trained here with the same data split,
  loss, epochs and schedule as the two variants, so the three rows differ only in the encoder.
  (FromStudy("unet_rocks") would take that study's best checkpoint, trained with whatever loss
  and downsampling won there, and evaluated on a split made by another run; training it here is
  the simpler fair comparison.)
- B.3-A: variant A, the classifier's encoder frozen, decoder and adapters trained.
- B.3-B: variant B, the encoder unfrozen at epoch 10 with a 10x lower encoder learning rate.

    python -m orchestrator.run search_spaces/unet_backbone.py
"""

from typing import Any

from orchestrator.study import FromStudy, Stage, Study
from search_spaces.unet_rocks import BASE_UNET, UNET_DATA, UNET_TRAINING

# The classifier as encoder; both variants share it and its learning-rate multiplier.
BACKBONE = {
    "model": "unet_backbone",
    "encoder": FromStudy("classifier128"),
    "encoder_lr_mult": 0.1,
}


def evaluated_stage(name: str, title: str, label: str, config: dict[str, Any]) -> Stage:
    """One configuration from the study's base, trained to the end and evaluated on test."""
    return Stage(
        name,
        title=title,
        label=label,
        inherit="base",
        scheduler="fifo",
        evaluate=True,
        config=config,
    )


study = Study(
    name="unet_backbone",
    trainable="segmentation",
    description="U-Net with the classifier as encoder (frozen / unfrozen later) vs the base U-Net.",
    base={**UNET_DATA, **UNET_TRAINING, "loss": "bce_dice"},
    metric="val_iou",
    stages=[
        evaluated_stage("base_unet", "B.3 Base U-Net", "B.3-base", BASE_UNET),
        evaluated_stage(
            "frozen",
            "B.3 Variant A: encoder frozen",
            "B.3-A",
            {**BACKBONE, "freeze_schedule": "frozen"},
        ),
        evaluated_stage(
            "unfrozen_later",
            "B.3 Variant B: encoder unfrozen at epoch 10",
            "B.3-B",
            {**BACKBONE, "freeze_schedule": "unfreeze_at", "unfreeze_epoch": 10},
        ),
    ],
)
