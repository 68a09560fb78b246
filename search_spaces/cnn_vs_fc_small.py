"""Section C, small (CPU-sized) models: the same comparison in minutes on a laptop CPU.

Not the course's reference models (those are search_spaces/cnn_vs_fc.py, ResNet-18-sized): the
CNNs here have 0.02M-0.3M parameters, so their accuracies answer "does the ranking FC < CNN <
residual CNN already hold for small nets?", not "does archsweep reproduce the sample solution".
Same budget as the reference study: Adam 1e-3, MNIST 5 epochs, CIFAR-10 10 epochs (batch 128,
CIFAR with flip + crop augmentation).

    python -m orchestrator.run search_spaces/cnn_vs_fc_small.py
"""

from orchestrator.study import Study
from search_spaces.cnn_vs_fc import DATA, model_stage

TRAINING = {"batch_size": 128, "optimizer": "adam", "lr": 1e-3}
MNIST = {**DATA["mnist"], "epochs": 5}
CIFAR = {**DATA["cifar10"], "epochs": 10, "augment": {"hflip": True, "crop_padding": 4}}

study = Study(
    name="cnn_vs_fc_small",
    trainable="classification",
    description="Section C with small, CPU-sized models (not the course's reference models).",
    base={**TRAINING, **MNIST, "model": "fc"},
    stages=[
        model_stage(
            "mnist_fc", "MNIST FC, small", MNIST, {"model": "fc", "hidden": (512, 256, 128)}
        ),
        # 3 convs before global average pooling: with 2 (32, 64) each pooled feature sees only a
        # 10x10 patch and GAP throws the layout away: 65.5% train accuracy in epoch 1 against
        # 94.4% with 3 (benchmarks/simple_cnn_learning.py).
        model_stage(
            "mnist_cnn",
            "MNIST CNN, small",
            MNIST,
            {"model": "simple_cnn", "channels": (32, 64, 128)},
        ),
        model_stage(
            "mnist_residual",
            "MNIST ResCNN, small",
            MNIST,
            {"model": "residual_cnn", "channels": (32, 64), "blocks": (1, 1)},
        ),
        model_stage(
            "cifar_fc",
            "CIFAR FC, small",
            CIFAR,
            {"model": "fc", "hidden": (1024, 512, 512, 256), "dropout": 0.3},
        ),
        model_stage(
            "cifar_residual",
            "CIFAR ResCNN, small",
            CIFAR,
            {"model": "residual_cnn", "channels": (32, 64, 128)},
        ),
        model_stage(
            "cifar_regularized",
            "CIFAR ResCNN+reg, small",
            CIFAR,
            {"model": "residual_cnn", "channels": (32, 64, 128), "dropout": 0.2},
            weight_decay=5e-4,
        ),
    ],
)
