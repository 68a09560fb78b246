"""Section B.3: a U-Net whose encoder is the trained 128x128 classifier, against the base U-Net.

Run `classifier128.py` first: `encoder=FromStudy("classifier128")` takes its best trial's
architecture and checkpoint (GAP/FC head removed; its stages feed the skips through 1x1 adapter
convs, see `describe()` in trainables/models/unet_backbone.py). Variant A keeps the encoder
frozen; variant B unfreezes it at epoch 10 with a 10x lower encoder LR. Both stages are
evaluated on the test split, so the report's evaluation table compares them with the base U-Net.
"""

from ray import tune

from orchestrator.study import FromStudy, Stage, Study
from search_spaces.unet_rocks import BASE_UNET, UNET_DATA, UNET_TRAINING

study = Study(
    name="unet_backbone",
    trainable="segmentation",
    description="U-Net with the classifier as encoder (frozen / unfrozen later) vs the base U-Net.",
    base={**UNET_DATA, **UNET_TRAINING, "loss": "bce_dice"},
    metric="val_iou",
    stages=[
        Stage(
            "base_unet",
            title="Base U-Net",
            label="Base",
            config=BASE_UNET,
            evaluate=True,
            scheduler="fifo",
        ),
        Stage(
            "backbone",
            title="Classifier backbone",
            label="B3",
            inherit="base",
            evaluate=True,
            scheduler="fifo",
            config={
                "model": "unet_backbone",
                "encoder": FromStudy("classifier128"),
                "encoder_lr_mult": 0.1,
            },
            space={
                ("freeze_schedule", "unfreeze_epoch"): tune.grid_search(
                    [
                        ("frozen", 0),  # variant A
                        ("unfreeze_at", 10),  # variant B
                    ]
                )
            },
        ),
    ],
)
