"""Settings the course's study files share (import them; a study file stays a short read).

Study files are plain Python executed by `python -m orchestrator.run`: only run ones you trust.
"""

from __future__ import annotations

# Tiny ImageNet, 10 classes (the first 10 of wnids.txt), 64x64; the official val folder is the
# test split and 10% of train (stratified) is validation. `--set classes=...` picks others.
TINY_IMAGENET_10 = {
    "dataset": "tiny_imagenet",
    "classes": 10,
    "val_fraction": 0.1,
    "test_split": "official",
    "split_seed": 0,
}

# The course's training recipe: Adam, lr 1e-3, cross-entropy, 20 epochs, batch 128, with the
# standard light augmentation for 64x64 inputs (pad-4 random crop + horizontal flip).
COURSE_TRAINING = {
    "epochs": 20,
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 1e-3,
    "augment": {"hflip": True, "crop_padding": 4},
}

# ResNet with the CIFAR-style stem (conv3x3/1, no max-pool): the course's choice for 64x64 input.
# blocks=2 means two basic blocks in every stage, whatever the number of stages.
RESNET_18 = {
    "model": "resnet",
    "channels": (64, 128, 256, 512),
    "blocks": 2,
    "stem": "cifar",
    "activation": "relu",
}

# A model inside the course's 5M-parameter budget, for the single-dimension studies.
RESNET_SMALL = {**RESNET_18, "channels": (32, 64, 128, 256)}

# The final model's recipe (section A.5): longer, AdamW with cosine decay, more augmentation.
FINAL_TRAINING = {
    "epochs": 35,
    "optimizer": "adamw",
    "weight_decay": 0.05,
    "scheduler": "cosine",
    "augment": {"hflip": True, "crop_padding": 4, "color_jitter": 0.2},
}
