import pytest
import torch

from braintumor.models.cnn import MRICNN


@pytest.mark.parametrize(
    ("channels", "size", "widths"), [(1, 32, (8, 16)), (3, 96, (16, 32, 64, 128)), (1, 50, (4,))]
)
def test_output_shape(channels, size, widths):
    net = MRICNN(num_classes=7, in_channels=channels, widths=widths, convs_per_block=2)
    assert net(torch.randn(3, channels, size, size)).shape == (3, 7)


def test_dropout_and_batchnorm_are_there():
    net = MRICNN(num_classes=4, widths=(8, 16), dropout=0.5)
    kinds = {type(m).__name__ for m in net.modules()}
    assert {"BatchNorm2d", "Dropout", "ReLU", "MaxPool2d"} <= kinds
    assert net.head[1].p == 0.5


def test_eval_mode_is_deterministic():
    net = MRICNN(num_classes=4, widths=(8,)).eval()
    x = torch.randn(2, 1, 16, 16)
    assert torch.equal(net(x), net(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match="dropout"):
        MRICNN(4, dropout=1.0)
    with pytest.raises(ValueError, match="widths"):
        MRICNN(4, widths=())


def test_width_multiplier_scales_every_block():
    half = MRICNN(num_classes=3, widths=(16, 32), width_multiplier=0.5)
    convs = [m for m in half.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16]
    assert half(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
    with pytest.raises(ValueError, match="width_multiplier"):
        MRICNN(3, width_multiplier=0)
    with pytest.raises(ValueError, match="pretrained"):
        MRICNN(3, pretrained=True)
