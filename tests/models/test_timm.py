"""model=timm: any model of timm's zoo, on tiny timm models with random weights (offline)."""

from __future__ import annotations

import itertools
import time

import pytest
import timm
import torch
from safetensors.torch import save_file

from braintumor.errors import UsageError, WeightsUnavailableError
from braintumor.inference.torch_predictor import TorchPredictor
from braintumor.models import timm_backbone
from braintumor.models.timm_backbone import TimmBackbone
from braintumor.pipeline.build import build_datamodule, build_module
from braintumor.pipeline.train import train
from braintumor.training.module import MRIClassifier

TINY = "test_resnet"  # timm's own test models: a few thousand weights, any input size


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", ["test_resnet", "test_convnext", "test_efficientnet", "test_vit"])
def test_a_timm_model_gets_our_classes_and_channels(name, channels):
    net = TimmBackbone(name, num_classes=5, in_channels=channels, drop_path_rate=0.1)
    size = 160 if "vit" in name else 64  # a ViT takes its own input size
    logits = net(torch.randn(2, channels, size, size))
    assert logits.shape == (2, 5) and net.head.out_features == 5
    assert net.gradcam_layer is None if "vit" in name else net.gradcam_layer.startswith("model.")


def test_an_unknown_name_is_refused_with_close_matches():
    with pytest.raises(UsageError, match=r"'convnext_tiniest' is not a timm model.*convnext_tiny"):
        TimmBackbone("convnext_tiniest", num_classes=3)


@pytest.fixture
def weights_file(tmp_path):
    """The ImageNet-shaped weights (3 channels, 1000 classes) of TINY, as a local file."""
    torch.manual_seed(0)
    state = timm.create_model(TINY, num_classes=1000).state_dict()
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    return path, state


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_a_local_weights_file_is_loaded_without_its_head(weights_file, tmp_path, suffix):
    path, state = weights_file
    if suffix == ".pth":
        path = tmp_path / "model.pth"
        torch.save(state, path)
    net = TimmBackbone(TINY, num_classes=4, in_channels=1, weights_path=path)
    own = net.model.state_dict()
    assert torch.equal(own["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    assert own["fc.weight"].shape == (4, state["fc.weight"].shape[1])  # a new head
    stem = next(k for k in own if own[k].ndim == 4)  # the first conv, adapted to one channel
    assert torch.allclose(own[stem], state[stem].sum(1, keepdim=True))


def test_weights_of_another_architecture_are_refused_naming_the_keys(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file(timm.create_model("test_convnext", num_classes=1000).state_dict(), str(path))
    fits = r"do not fit timm's test_resnet.*(Missing|Unexpected)"
    with pytest.raises(WeightsUnavailableError, match=fits):
        TimmBackbone(TINY, num_classes=4, weights_path=path)


def test_a_missing_weights_file_is_named():
    with pytest.raises(WeightsUnavailableError, match=r"weights_path '/nowhere/w.safetensors'"):
        TimmBackbone(TINY, num_classes=4, weights_path="/nowhere/w.safetensors")


def test_offline_pretrained_fails_in_seconds_naming_weights_path(tmp_path, monkeypatch):
    monkeypatch.setattr(timm_backbone, "HUB_HOST", ("127.0.0.1", 9))  # closed port: "offline"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-home"))
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match=r"resnet18.*model\.net\.weights_path"):
        TimmBackbone("resnet18", num_classes=4, pretrained=True)
    assert time.monotonic() - start < 30


def test_offline_pretrained_takes_the_cached_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(timm_backbone, "HUB_HOST", ("127.0.0.1", 9))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    repo = tmp_path / "cache" / "models--timm--resnet18.a1_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    torch.manual_seed(1)
    state = timm.create_model("resnet18").state_dict()
    save_file(state, str(repo / "snapshots" / "abc123" / "model.safetensors"))
    net = TimmBackbone("resnet18", num_classes=4, pretrained=True)
    assert torch.equal(
        net.model.state_dict()["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"]
    )


def test_the_data_config_is_timms_and_imagenet_normalization_follows_the_weights():
    random = TimmBackbone.resolve_data_config("convnext_tiny", in_channels=1)
    assert random["input_size"] == (1, 224, 224) and random["mean"] is None
    assert random["interpolation"] == "bicubic" and random["crop_pct"] == pytest.approx(0.95)
    pretrained = TimmBackbone.resolve_data_config("convnext_tiny", 1, pretrained=True)
    assert pretrained["mean"] == pytest.approx(((0.485 + 0.456 + 0.406) / 3,))


def test_a_timm_run_trains_explains_exports_and_fine_tunes(make_cfg, weights_file, tmp_path):
    """Through the config: freezing and the backbone's learning-rate factor apply (weights
    given), Grad-CAM takes the last feature stage, TTA runs, the ONNX export passes parity."""
    from braintumor.inference.explain import grad_cam, target_layer
    from braintumor.inference.export import ExportConfig, export
    from braintumor.models.tta import tta_logits

    path, _ = weights_file
    model = ["model=timm", f"model.net.name={TINY}", f"model.net.weights_path={path}",
             "model.freeze_backbone_epochs=1", "model.backbone_lr_factor=0.1",
             "model.net.drop_path_rate=0.05"]  # fmt: skip
    cfg = make_cfg(*model, "trainer.max_epochs=2", "logger=none", "~callbacks.lr_monitor",
                   "~callbacks.augmented_samples", "eval.tta=flip")  # fmt: skip
    module = build_module(cfg, build_datamodule(cfg))
    assert module.hparams.freeze_backbone_epochs == 1 and module.hparams.gradcam_layer == (
        "net.model.layer4"
    )
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["backbone"]["lr"] == pytest.approx(groups["head"]["lr"] * 0.1)
    metrics = train(cfg)
    assert 0 <= metrics["test/f1_macro"] <= 1
    ckpt = next((tmp_path / "run" / "checkpoints").glob("epoch_*.ckpt"))
    trained = MRIClassifier.from_checkpoint(ckpt).eval()
    assert target_layer(trained) is trained.net.model.layer4
    maps, probs = grad_cam(trained, target_layer(trained), torch.randn(2, 1, 32, 32))
    assert maps.shape[0] == 2 and probs.shape == (2, 4)
    with torch.no_grad():
        assert tta_logits(trained, torch.randn(3, 1, 32, 32), "flip").shape == (3, 4)
    out, diff = export(ExportConfig(ckpt=str(ckpt), out=str(tmp_path / "m.onnx")))
    assert out.is_file() and diff < 1e-4
    path.unlink()  # the initial weights gone (another machine): the checkpoint still loads
    again = MRIClassifier.from_checkpoint(ckpt)
    assert torch.equal(again.net.model.fc.weight, trained.net.model.fc.weight)
    assert TorchPredictor.from_checkpoint(ckpt, device="cpu").class_names == trained.class_names


@pytest.mark.parametrize("model", ["timm", "backbone"])
def test_layer_wise_decay_gives_each_stage_below_the_head_a_smaller_rate(
    make_cfg, tmp_path, weights_file, model
):
    if model == "timm":
        weights, name = weights_file[0], TINY
    else:
        from torchvision.models import resnet18

        weights, name = tmp_path / "resnet18.pth", "resnet18"
        torch.save(resnet18(weights=None).state_dict(), weights)
    overrides = [f"model={model}", f"model.net.name={name}", f"model.net.weights_path={weights}",
                 "model.layer_decay=0.5", "model.backbone_lr_factor=0.1"]  # fmt: skip
    cfg = make_cfg(*overrides)
    module = build_module(cfg, build_datamodule(cfg))
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    groups = optimizer.param_groups
    head = next(g for g in groups if g["name"] == "head")
    stages = [g for g in groups if g["name"].startswith("backbone.")]
    assert len(stages) >= 4
    top = stages[-1]["lr"]
    assert top == pytest.approx(head["lr"] * 0.1 * 0.5)
    for lower, upper in itertools.pairwise(stages):
        assert lower["lr"] == pytest.approx(upper["lr"] * 0.5)
    every = sum(len(g["params"]) for g in groups)
    assert every == len(list(module.parameters()))  # each parameter in exactly one group
    assert len({id(p) for g in groups for p in g["params"]}) == every
    if model == "timm":  # through a run: the schedule and the LR monitor take the groups
        metrics = train(make_cfg(*overrides, "trainer.max_epochs=2", "test=false"))
        assert metrics["lr-AdamW/backbone.0"] < metrics["lr-AdamW/head"]


def test_a_random_backbone_gets_no_layer_decay(make_cfg):
    cfg = make_cfg("model=timm", f"model.net.name={TINY}", "model.layer_decay=0.5")
    assert build_module(cfg, build_datamodule(cfg)).hparams.layer_decay is None


@pytest.mark.parametrize("content", [b"", b"hello", b"PK\x03\x04 truncated zip"])
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_an_unreadable_weights_file_is_refused_in_one_clear_line(tmp_path, content, suffix):
    bad = tmp_path / f"weights{suffix}"
    bad.write_bytes(content)
    with pytest.raises(WeightsUnavailableError, match="not a readable weights file"):
        TimmBackbone("resnet18", num_classes=3, in_channels=1, weights_path=bad)
    with pytest.raises(WeightsUnavailableError, match="is a folder"):
        TimmBackbone("resnet18", num_classes=3, in_channels=1, weights_path=tmp_path)


@pytest.mark.parametrize("key,value", [("dropout", 2.0), ("drop_path_rate", -0.5),
                                       ("drop_path_rate", 1.0)])  # fmt: skip
def test_rates_outside_zero_one_are_refused(key, value):
    with pytest.raises(UsageError, match=rf"model\.net\.{key} must be"):
        TimmBackbone("resnet18", num_classes=3, in_channels=1, **{key: value})


def test_a_token_model_at_another_image_size_is_refused_before_training(make_cfg):
    cfg = make_cfg("model=timm", "model.net.name=vit_tiny_patch16_224", "data.image_size=32")
    dm = build_datamodule(cfg)
    with pytest.raises(UsageError, match=r"takes 224 x 224 px images only; data\.image_size is 32"):
        build_module(cfg, dm)
