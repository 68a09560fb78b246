"""U-Net and U-Net with a classifier backbone: shapes, documented counts, skips, freezing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainables.models import EncoderDecoderModel, build_model, count_parameters
from trainables.models.unet import UNET_BUDGET_CONFIG

TINY_ENCODER = {"model": "resnet", "channels": [8, 16], "blocks": [1, 1]}


# --- plain U-Net -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "transpose", "bilinear"),
    [
        ({"base_channels": 32}, 7_763_041, 7_240_801),
        ({"base_channels": 32, "max_width": 160}, 2_663_297, 2_494_337),
        ({"base_channels": 16}, 1_942_577, 1_812_017),
        ({"base_channels": 32, "max_width": 128}, 2_075_105, 1_946_081),
        ({"base_channels": 32, "max_width": 192}, 3_370_273, 3_155_233),
        ({"base_channels": 64}, 31_037_633, 28_948_673),
    ],
)
def test_documented_parameter_counts(fields: dict, transpose: int, bilinear: int) -> None:
    cfg = {"model": "unet", "depth": 4, **fields}
    assert count_parameters({**cfg, "up": "transpose"}) == transpose
    assert count_parameters({**cfg, "up": "bilinear"}) == bilinear
    # Stride-2 downsampling reuses the level's first conv: same count as MaxPool.
    assert count_parameters({**cfg, "down": "stride"}) == transpose


@pytest.mark.parametrize("up", ["transpose", "bilinear"])
def test_budget_config_meets_course_budget(up: str) -> None:
    n = count_parameters({**UNET_BUDGET_CONFIG, "up": up})
    assert 2.25e6 <= n <= 2.75e6
    assert UNET_BUDGET_CONFIG["base_channels"] == 32 and UNET_BUDGET_CONFIG["depth"] == 4


@pytest.mark.parametrize("down", ["maxpool", "stride"])
@pytest.mark.parametrize("up", ["transpose", "bilinear"])
def test_unet_shapes(down: str, up: str) -> None:
    model = build_model(
        {
            "model": "unet",
            "base_channels": 4,
            "depth": 3,
            "down": down,
            "up": up,
            "out_channels": 2,
            "dropout": 0.1,
        }
    )
    out = model(torch.randn(2, 3, 32, 48))
    assert out.shape == (2, 2, 32, 48)
    assert model.encoder.feature_channels == (4, 8, 16, 32)


def test_unet_outputs_logits() -> None:
    model = build_model({"model": "unet", "base_channels": 4, "depth": 2}).eval()
    with torch.no_grad():
        out = model(torch.randn(4, 3, 16, 16) * 10)
    assert out.min() < 0 or out.max() > 1  # not squashed by a sigmoid
    assert isinstance(model.decoder.head, nn.Conv2d)


def test_unet_rejects_sizes_not_divisible_by_2_pow_depth() -> None:
    model = build_model({"model": "unet", "base_channels": 4, "depth": 4})
    with pytest.raises(ValueError, match=r"100x100 is not divisible by 16"):
        model(torch.randn(1, 3, 100, 100))


def test_unet_describe() -> None:
    text = build_model({"model": "unet", "base_channels": 4, "depth": 2}).describe()
    assert "level2: 16 ch, stride 4 -> decoder input" in text
    assert "level0: 4 ch, stride 1 -> skip of decoder step 2" in text


# --- U-Net with a classifier backbone ----------------------------------------------------------


def tiny_backbone(**fields) -> nn.Module:
    return build_model({"model": "unet_backbone", "encoder": TINY_ENCODER, **fields})


@pytest.mark.parametrize("stem", ["cifar", "imagenet", "imagenet_nopool"])
@pytest.mark.parametrize("up", ["transpose", "bilinear"])
def test_backbone_output_at_input_resolution(stem: str, up: str) -> None:
    model = build_model(
        {"model": "unet_backbone", "encoder": {**TINY_ENCODER, "stem": stem}, "up": up}
    )
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1, 32, 32)
    assert not hasattr(model.encoder.head, "fc")  # GAP/FC head removed


def test_backbone_describe_wiring_cifar_stem() -> None:
    text = tiny_backbone().describe()
    assert "stem: 8 ch, stride 1 -> unused" in text
    assert "stage1: 8 ch, stride 1 -> skip of decoder step 1 (scale 1/1)" in text
    assert "stage2: 16 ch, stride 2 -> decoder input" in text


def test_backbone_describe_wiring_imagenet_stem() -> None:
    encoder = {"model": "resnet", "stem": "imagenet"}
    model = build_model({"model": "unet_backbone", "encoder": encoder})
    text = model.describe()
    assert "stem: 64 ch, stride 2 -> skip of decoder step 4 (scale 1/2)" in text
    assert "stage4: 512 ch, stride 32 -> decoder input" in text
    assert "step 5: stride 2 -> 1" in text and "no skip" in text


def test_backbone_adapters_when_decoder_channels_differ() -> None:
    model = build_model(
        {
            "model": "unet_backbone",
            "encoder": {**TINY_ENCODER, "stem": "imagenet"},
            "decoder_channels": [12, 6, 4],
        }
    )
    adapters = model.decoder.adapters
    assert isinstance(adapters[0][0], nn.Conv2d) and adapters[0][0].kernel_size == (1, 1)
    assert isinstance(adapters[2], nn.Identity)  # final skip-less step
    assert "1x1 adapter 8->12" in model.describe()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1, 32, 32)


def test_backbone_decoder_channels_length_error() -> None:
    with pytest.raises(ValueError, match=r"decoder_channels needs 1 entries.*strides 2->1"):
        tiny_backbone(decoder_channels=[16, 8, 4])


def test_backbone_rejects_non_encoder_family_and_in_channels_mismatch() -> None:
    with pytest.raises(ValueError, match="valid encoder families: residual_cnn, resnet"):
        build_model({"model": "unet_backbone", "encoder": {"model": "fc"}})
    with pytest.raises(ValueError, match="in_channels=1 differs"):
        build_model({"model": "unet_backbone", "encoder": {**TINY_ENCODER, "in_channels": 1}})


def test_backbone_residual_cnn_encoder() -> None:
    model = build_model(
        {
            "model": "unet_backbone",
            "encoder": {"model": "residual_cnn", "channels": [8, 16, 32], "blocks": [1, 1, 1]},
        }
    )
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 1, 16, 16)


def _bn_stats(module: nn.Module) -> list[torch.Tensor]:
    return [
        t.clone()
        for m in module.modules()
        if isinstance(m, nn.BatchNorm2d)
        for t in (m.running_mean, m.running_var, m.num_batches_tracked)
    ]


def _weights(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _step(model: nn.Module, opt: torch.optim.Optimizer) -> None:
    opt.zero_grad()
    out = model(torch.randn(2, 3, 16, 16))
    (out * torch.randn_like(out)).sum().backward()
    opt.step()


@pytest.mark.parametrize(
    "cfg",
    [
        {"model": "unet_backbone", "encoder": TINY_ENCODER},
        {"model": "unet", "base_channels": 4, "depth": 2},  # same interface on the plain U-Net
    ],
)
def test_freeze_keeps_encoder_bn_stats_and_weights(cfg: dict) -> None:
    torch.manual_seed(0)
    model = build_model(cfg)
    model.freeze_encoder()
    model.train()
    assert not model.encoder.training and model.decoder.training
    assert all(not p.requires_grad for p in model.encoder_parameters())
    enc_stats, dec_stats = _bn_stats(model.encoder), _bn_stats(model.decoder)
    enc_w, dec_w = _weights(model.encoder), _weights(model.decoder)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    _step(model, opt)
    assert _same(enc_stats, _bn_stats(model.encoder))  # running stats unchanged in train mode
    assert not _same(dec_stats, _bn_stats(model.decoder))
    assert _same(enc_w, _weights(model.encoder))  # weights unchanged after an optimizer step
    assert not _same(dec_w, _weights(model.decoder))

    model.eval()
    model.train()  # train() must keep the frozen encoder in eval
    assert not any(m.training for m in model.encoder.modules())

    model.unfreeze_encoder()
    assert model.encoder.training and all(p.requires_grad for p in model.encoder_parameters())
    _step(model, opt)
    assert not _same(enc_stats, _bn_stats(model.encoder))
    assert not _same(enc_w, _weights(model.encoder))


def test_partial_unfreeze_deepest_stages() -> None:
    model = tiny_backbone()
    model.freeze_encoder()
    model.unfreeze_encoder(1)
    assert model.frozen_stages == (True, True, False)  # stem, stage1 frozen; stage2 trains
    model.train()
    stem, stage1, stage2 = model.encoder.feature_modules()
    assert not stem.training and not stage1.training and stage2.training
    assert all(p.requires_grad for p in stage2.parameters())
    assert not any(p.requires_grad for p in stage1.parameters())
    stats = _bn_stats(stage1)
    model(torch.randn(2, 3, 16, 16))
    assert _same(stats, _bn_stats(stage1))
    model.unfreeze_encoder([0])
    assert model.frozen_stages == (False, True, False)
    with pytest.raises(ValueError, match="3 stages"):
        model.unfreeze_encoder(4)


def test_parameter_groups_partition_the_model() -> None:
    model = tiny_backbone()
    enc = {id(p) for p in model.encoder_parameters()}
    dec = {id(p) for p in model.decoder_parameters()}
    assert not enc & dec
    assert enc | dec == {id(p) for p in model.parameters()}


def test_load_encoder_state_from_full_classifier() -> None:
    classifier = build_model({**TINY_ENCODER, "num_classes": 7})
    model = tiny_backbone()
    model.load_encoder_state(classifier.state_dict())
    for name, p in model.encoder.named_parameters():
        torch.testing.assert_close(p, classifier.get_parameter(name))


def test_load_encoder_state_mismatch_errors() -> None:
    model = tiny_backbone()
    wider = build_model({**TINY_ENCODER, "channels": [8, 32]}).state_dict()
    with pytest.raises(ValueError, match="shape mismatches"):
        model.load_encoder_state(wider)
    partial = build_model(TINY_ENCODER).state_dict()
    del partial["stem.conv.weight"]
    with pytest.raises(ValueError, match=r"missing keys \['stem.conv.weight'\]"):
        model.load_encoder_state(partial)
    deeper = build_model({**TINY_ENCODER, "blocks": [2, 1]}).state_dict()
    with pytest.raises(ValueError, match="unexpected keys"):
        model.load_encoder_state(deeper)


def test_encoder_decoder_models_share_one_base_class() -> None:
    # The trainable tests isinstance(model, EncoderDecoderModel) instead of hasattr (issue 8).
    unets = [
        build_model({"model": "unet", "base_channels": 4, "depth": 2}),
        build_model({"model": "unet_backbone", "encoder": TINY_ENCODER}),
    ]
    for model in unets:
        assert isinstance(model, EncoderDecoderModel)
    classifier = build_model(TINY_ENCODER)
    assert not isinstance(classifier, EncoderDecoderModel)
    assert not hasattr(classifier, "freeze_encoder")


def test_plain_unet_load_encoder_state_names_the_mismatch() -> None:
    model = build_model({"model": "unet", "base_channels": 4, "depth": 2})
    model.load_encoder_state(model.encoder.state_dict())  # its own encoder's weights load
    classifier = build_model(TINY_ENCODER)
    with pytest.raises(ValueError, match=r"\(UNetEncoder\): missing keys"):
        model.load_encoder_state(classifier.state_dict())
