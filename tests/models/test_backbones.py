"""Pretrained backbones, offline: one builder, data configs, weights files, freezing,
normalization, Grad-CAM layers."""

import itertools

import pytest
import torch
from lightning.pytorch import Callback, Trainer

from braintumor.errors import WeightsUnavailableError
from braintumor.models import backbones, build_model, model_data_config
from braintumor.models.backbones import Backbone
from braintumor.pipeline.build import build_datamodule, build_module, model_normalization
from braintumor.pipeline.train import train
from braintumor.training.callbacks import FreezeBackbone
from braintumor.training.module import MRIClassifier
from braintumor.training.schedulers import warmup_cosine

ARCHS = [
    "resnet18",
    "resnet50",
    "efficientnet_b0",
    "efficientnet_b3",
    "convnext_tiny",
    "mobilenet_v3_large",
]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("arch", ARCHS)
def test_every_backbone_trains_a_step(arch, channels):
    net = build_model({"name": arch}, num_classes=5, in_channels=channels)
    assert isinstance(net, Backbone) and net.name == arch
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x, y = torch.randn(2, channels, 32, 32), torch.tensor([0, 4])
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in net.head.parameters())


@pytest.mark.parametrize("channels", [1, 3])
def test_backbone_fast_dev_run_through_the_config(make_cfg, channels):
    cfg = make_cfg("model=backbone", "debug=fdr", f"data.channels={channels}", "data.batch_size=4")
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))


@pytest.mark.slow
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("arch", ARCHS)
def test_every_backbone_runs_a_fast_dev_run(make_cfg, arch, channels):
    cfg = make_cfg("model=backbone", f"model.net.name={arch}", "debug=fdr",
                   f"data.channels={channels}", "data.batch_size=4")  # fmt: skip
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))


def test_head_is_sized_and_first_conv_folded():
    net = Backbone("resnet18", num_classes=7, in_channels=1)
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    assert net.model.conv1.in_channels == 1 and net.head.out_features == 7
    net = Backbone("mobilenet_v3_large", num_classes=5, in_channels=3, dropout=0.3)
    assert isinstance(net.head[0], torch.nn.Dropout) and net.head[1].out_features == 5


@pytest.fixture
def resnet_file(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    state = resnet18(weights=None).state_dict()
    path = tmp_path / "resnet18-local.pth"
    torch.save(state, path)
    return path, state


def test_local_weights_file_is_loaded(resnet_file):
    path, state = resnet_file
    net = Backbone("resnet18", num_classes=4, in_channels=3, weights_path=path)
    assert torch.equal(net.model.conv1.weight, state["conv1.weight"])
    assert torch.equal(net.model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    gray = Backbone("resnet18", num_classes=4, in_channels=1, weights_path=path)
    assert torch.allclose(gray.model.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    x = torch.rand(1, 1, 64, 64)
    gray.eval(), net.eval()
    with torch.no_grad():  # folded conv on gray == original conv on gray replicated to RGB
        assert torch.allclose(
            gray.model.conv1(x), net.model.conv1(x.expand(-1, 3, -1, -1)), atol=1e-5
        )


def test_wrong_weights_file_is_explained(resnet_file):
    path, _ = resnet_file
    with pytest.raises(WeightsUnavailableError, match="do not fit torchvision's resnet50"):
        Backbone("resnet50", num_classes=4, weights_path=path)
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        Backbone("resnet18", num_classes=4, weights_path=path.with_name("missing.pth"))


def test_offline_pretrained_fails_at_startup_with_instructions(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(backbones, "WEIGHTS_HOST", ("127.0.0.1", 9))  # closed port: "offline"
    hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "empty-hub"))
    try:
        cfg = make_cfg("model=backbone", "model.net.pretrained=true")
        dm = build_datamodule(cfg)
        with pytest.raises(
            WeightsUnavailableError, match=r"resnet18-f37072fd\.pth(.|\n)*weights_path"
        ):
            build_module(cfg, dm)
    finally:
        torch.hub.set_dir(hub)


def test_normalization_follows_the_model_config(make_cfg, resnet_file):
    path, _ = resnet_file
    scratch = build_datamodule(make_cfg("model=backbone"))
    assert scratch.mean == [0.5]
    pretrained = build_datamodule(make_cfg("model=backbone", f"model.net.weights_path={path}"))
    assert pretrained.mean == pytest.approx([0.449], abs=1e-3)
    rgb = build_datamodule(
        make_cfg("model=backbone", f"model.net.weights_path={path}", "data.channels=3")
    )
    assert rgb.mean == pytest.approx([0.485, 0.456, 0.406])
    cnn = build_datamodule(make_cfg())
    assert cnn.mean == [0.5]
    # imagenet: ImageNet's whatever the network; data: the data's even when pretrained
    assert model_normalization(make_cfg("model.normalization=imagenet")) == {
        "mean": [sum((0.485, 0.456, 0.406)) / 3], "std": [sum((0.229, 0.224, 0.225)) / 3]
    }  # fmt: skip
    data = make_cfg("model=backbone", f"model.net.weights_path={path}", "model.normalization=data")
    assert model_normalization(data) == {}


@pytest.mark.parametrize("arch", ARCHS)
def test_each_backbone_knows_its_data_config_without_being_built(arch):
    config = model_data_config({"name": arch, "pretrained": True}, in_channels=1)
    size = 300 if arch == "efficientnet_b3" else 224  # the size its ImageNet weights expect
    assert config["input_size"] == (1, size, size)
    assert config["mean"] == pytest.approx((0.449,), abs=1e-3)  # ImageNet's, folded to 1 channel
    built = build_model({"name": arch}, num_classes=3, in_channels=3).data_config()
    assert built["input_size"] == (3, size, size) and built["mean"] is None  # random weights
    assert built == model_data_config({"name": arch}, in_channels=3)


def test_the_cnn_expects_any_size_and_the_data_normalization():
    config = model_data_config({"_target_": "braintumor.models.cnn.MRICNN"}, in_channels=1)
    assert config["input_size"] is None and config["mean"] is None and config["std"] is None
    net = build_model({"name": "cnn", "widths": [4, 8]}, num_classes=3, in_channels=1)
    assert net.data_config() == config and net(torch.randn(2, 1, 32, 32)).shape == (2, 3)


def test_build_model_takes_a_model_or_net_config_and_old_checkpoint_hparams():
    net = {"_target_": "braintumor.models.backbones.Backbone", "name": "resnet18", "dropout": None}
    assert build_model({"net": net, "optimizer": {}}, 4, 1).head.out_features == 4
    old = {**net, "num_classes": 4, "in_channels": 1}  # hparams.net of checkpoints before
    assert build_model(old, 4, 1).model.conv1.in_channels == 1
    with pytest.raises(ValueError, match="num_classes=4 but the data gives 5"):
        build_model(old, 5, 1)
    with pytest.raises(ValueError, match="needs `_target_`"):
        build_model({"dropout": 0.1}, 4, 1)
    prep = {"class_names": list("abcd"), "image_size": 32, "channels": 1, "mean": [0.5],
            "std": [0.5]}  # fmt: skip
    opt = {"_target_": "torch.optim.AdamW", "_partial_": True}
    module = MRIClassifier(old, opt, prep, gradcam_layer="net.model.layer4")
    assert module.hparams.gradcam_layer == "net.model.layer4"
    assert module(torch.randn(2, 1, 32, 32)).shape == (2, 4)


def test_a_checkpoint_with_the_old_net_hyperparameters_still_loads(trained_ckpt, tmp_path):
    checkpoint = torch.load(trained_ckpt, map_location="cpu", weights_only=False)
    net = checkpoint["hyper_parameters"]["net"]
    classes = len(checkpoint["hyper_parameters"]["preprocessing"]["class_names"])
    net.update(num_classes=classes, in_channels=1)  # as build_module stored them before
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        expected = MRIClassifier.from_checkpoint(trained_ckpt).eval()(x)
        assert torch.equal(MRIClassifier.from_checkpoint(old).eval()(x), expected)


class Snapshots(Callback):
    def __init__(self):
        self.backbone, self.head, self.bn = [], [], []

    def _take(self, module):
        head, backbone = module.head_and_backbone()
        self.backbone.append([p.detach().clone() for p in backbone])
        self.head.append([p.detach().clone() for p in head])
        self.bn.append(module.net.model.bn1.running_mean.clone())

    def on_train_epoch_start(self, trainer, module):
        self._take(module)

    def on_train_end(self, trainer, module):
        self._take(module)


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_frozen_epochs_leave_the_backbone_unchanged(make_cfg, resnet_file):
    path, _ = resnet_file
    overrides = ["trainer.max_epochs=2", "model.freeze_backbone_epochs=1"]
    scratch = make_cfg("model=backbone", *overrides, "model.backbone_lr_factor=0.1")
    hparams = build_module(scratch, build_datamodule(scratch)).hparams
    # a random backbone has nothing to preserve: not frozen, trained at the head's rate
    assert hparams["freeze_backbone_epochs"] == 0 and hparams["backbone_lr_factor"] == 1.0
    cfg = make_cfg("model=backbone", *overrides, f"model.net.weights_path={path}")
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    [freezer] = module.configure_callbacks()  # a plain Trainer gets it too
    assert isinstance(freezer, FreezeBackbone) and freezer.epochs == 1
    snaps = Snapshots()
    trainer = Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, num_sanity_val_steps=0, callbacks=[snaps],
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    assert len(snaps.backbone) == 3  # epoch 0 start, epoch 1 start, end
    assert _same(snaps.backbone[0], snaps.backbone[1])  # frozen epoch: weights ...
    assert torch.equal(snaps.bn[0], snaps.bn[1])  # ... and BatchNorm statistics
    assert not _same(snaps.head[0], snaps.head[1])  # the head learned
    assert not _same(snaps.backbone[1], snaps.backbone[2])  # unfrozen: the backbone learns
    assert not torch.equal(snaps.bn[1], snaps.bn[2])  # ... and so do its BatchNorm statistics
    lrs = {g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups}
    assert lrs["backbone"] == pytest.approx(lrs["head"] * 0.1)


def test_warmup_cosine_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, max_epochs=10, warmup_epochs=2, min_lr_ratio=0.0)
    lrs = []
    for _ in range(11):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1 / 3) and lrs[1] == pytest.approx(2 / 3)
    assert lrs[2] == pytest.approx(1.0) and lrs[10] == pytest.approx(0.0, abs=1e-9)
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:]))


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_b0"])
def test_gradcam_layer_of_each_backbone_config(make_cfg, arch):
    from braintumor.inference.explain import grad_cam, resize_map, target_layer

    cfg = make_cfg("model=backbone", f"model.net.name={arch}", "data.image_size=64")
    module = build_module(cfg, build_datamodule(cfg)).eval()
    layer = target_layer(module)
    expected = module.net.model.layer4 if arch == "resnet18" else module.net.model.features
    assert layer is expected
    stage = "layer4" if arch == "resnet18" else "features"  # chosen by the code, kept in hparams
    assert module.hparams.gradcam_layer == f"net.model.{stage}"
    maps, probs = grad_cam(module, layer, torch.randn(2, 1, 64, 64))
    assert maps.shape[0] == 2 and probs.shape == (2, 4)
    assert resize_map(maps[0], (80, 70)).shape == (80, 70)


def test_a_frozen_backbone_run_resumes_exactly(make_cfg, resnet_file, tmp_path):
    """Stopped in its frozen epochs and resumed, a fine-tuning run ends with the weights (and
    BatchNorm statistics) of the uninterrupted run: the freeze is a function of the epoch."""
    path, _ = resnet_file
    common = ["model=backbone", f"model.net.weights_path={path}", "model.freeze_backbone_epochs=2",
              "model.scheduler=null", "seed=3", "trainer.deterministic=true", "logger=none",
              "~callbacks.lr_monitor", "~callbacks.augmented_samples",
              "~callbacks.early_stopping", "data.batch_size=16", "test=false"]  # fmt: skip
    train(make_cfg(*common, "trainer.max_epochs=3", run="whole"))
    train(make_cfg(*common, "trainer.max_epochs=1", run="first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(make_cfg(*common, "trainer.max_epochs=3", f"ckpt_path={last}", run="resumed"))

    def weights(run: str) -> dict[str, torch.Tensor]:
        ckpt = tmp_path / run / "checkpoints" / "last.ckpt"
        return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]

    whole, resumed, first = weights("whole"), weights("resumed"), weights("first")
    assert whole.keys() == resumed.keys()
    for key, value in whole.items():
        assert torch.allclose(value.float(), resumed[key].float(), atol=1e-6, rtol=0), key
    stem = "net.model.conv1.weight"  # frozen in epochs 0-1, trained in epoch 2
    assert not torch.equal(first[stem], whole[stem])
