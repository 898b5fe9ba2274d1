"""Tests of the model zoo: shapes, gradients, parameter counts, knobs and their configs.

Every model is built through its ``conf/model/NAME.yaml`` the way the training code
does (``instantiate(cfg)(in_shape=..., num_classes=...)``), shrunk with
``width_divisor`` where the paper widths would be slow on a CPU.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from sweeplab.models.layers import SafePool2d, flat_features

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "model"
SHAPES = [(1, 28, 28), (3, 32, 32)]
NUM_CLASSES = 10

# Overrides that keep each model fast on a 2-core CPU.
SMALL: dict[str, dict[str, Any]] = {
    "softmax": {},
    "mlp": {},
    "three_layer": {},
    "convnet": {},
    "lenet": {},
    "alexnet": {"width_divisor": 16},
    "vgg": {"width_divisor": 16},
    "nin": {"width_divisor": 8},
    "googlenet": {"width_divisor": 16},
    "resnet": {"width_divisor": 8},
    "torchvision": {"name": "resnet18"},
}


def build(config_name: str, in_shape=(1, 28, 28), num_classes: int = NUM_CLASSES, /, **overrides: Any) -> nn.Module:
    """The model as the training code builds it: from its config, as a partial."""
    cfg = OmegaConf.merge(OmegaConf.load(CONF_DIR / f"{config_name}.yaml"), overrides)
    return instantiate(cfg)(in_shape=in_shape, num_classes=num_classes)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def modules_of(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


# --- configs ----------------------------------------------------------------------


def test_every_config_is_tested():
    assert {path.stem for path in CONF_DIR.glob("*.yaml")} == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_config_documents_and_matches_the_class_defaults(name):
    """Each config opens with a comment, is a partial, and its knobs are the class defaults."""
    path = CONF_DIR / f"{name}.yaml"
    assert path.read_text().startswith("# ")
    cfg = OmegaConf.to_container(OmegaConf.load(path))
    assert cfg.pop("_partial_") is True
    cls = instantiate({"_target_": "hydra.utils.get_class", "path": cfg.pop("_target_")})
    params = inspect.signature(cls).parameters
    assert list(params)[:2] == ["in_shape", "num_classes"]
    defaults = {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY}
    as_lists = lambda value: [as_lists(v) for v in value] if isinstance(value, (tuple, list)) else value  # noqa: E731
    assert cfg == {k: as_lists(v) for k, v in defaults.items()}


# --- shapes and gradients ------------------------------------------------------------


@pytest.mark.parametrize("in_shape", SHAPES, ids=["1x28x28", "3x32x32"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_logits_shape_and_finite_gradients(name, in_shape):
    torch.manual_seed(0)
    model = build(name, in_shape, **SMALL[name])
    model.train()
    x = torch.randn(4, *in_shape)
    logits = model(x)
    assert logits.shape == (4, NUM_CLASSES)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    # Logits, not probabilities: rows do not sum to one.
    assert not torch.allclose(logits.sum(dim=1), torch.ones(4))
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
    assert any(param.grad.abs().sum() > 0 for param in model.parameters())


# --- parameter counts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "in_shape", "expected"),
    [
        ("softmax", (1, 28, 28), (28 * 28 * 1 + 1) * 10),
        ("softmax", (3, 32, 32), (32 * 32 * 3 + 1) * 10),
        ("mlp", (1, 28, 28), (784 + 1) * 200 + (200 + 1) * 200 + (200 + 1) * 10),
        ("mlp", (3, 32, 32), (3072 + 1) * 200 + (200 + 1) * 200 + (200 + 1) * 10),
        # conv 3x3x1 -> 32; pool 28 -> 14; FC 32*14*14 -> 128; 128 -> 10
        ("three_layer", (1, 28, 28), (3 * 3 * 1 + 1) * 32 + (32 * 14 * 14 + 1) * 128 + (128 + 1) * 10),
        ("three_layer", (3, 32, 32), (3 * 3 * 3 + 1) * 32 + (32 * 16 * 16 + 1) * 128 + (128 + 1) * 10),
        # conv 5x5 pad 2 keeps 28, pool 14, conv 5x5 -> 10, pool 5: 16*5*5 features
        (
            "lenet",
            (1, 28, 28),
            (5 * 5 * 1 + 1) * 6 + (5 * 5 * 6 + 1) * 16 + (16 * 5 * 5 + 1) * 120 + (120 + 1) * 84 + (84 + 1) * 10,
        ),
        # 32 -> pool 16 -> conv 12 -> pool 6: 16*6*6 features
        (
            "lenet",
            (3, 32, 32),
            (5 * 5 * 3 + 1) * 6 + (5 * 5 * 6 + 1) * 16 + (16 * 6 * 6 + 1) * 120 + (120 + 1) * 84 + (84 + 1) * 10,
        ),
    ],
)
def test_parameter_count_by_hand(name, in_shape, expected):
    assert count(build(name, in_shape)) == expected


def test_vgg11_on_mnist_skips_the_last_pool():
    """28 -> 14 -> 7 -> 3 -> 1, then the fifth pool is skipped: 512 features, full widths."""
    convs = (3 * 3 * 1 + 1) * 64 + (3 * 3 * 64 + 1) * 128 + (3 * 3 * 128 + 1) * 256 + (3 * 3 * 256 + 1) * 256
    convs += (3 * 3 * 256 + 1) * 512 + 3 * (3 * 3 * 512 + 1) * 512
    fcs = (512 * 1 * 1 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 10
    paper = build("vgg", norm="none")
    assert flat_features(paper.features, (1, 28, 28)) == 512
    assert count(paper) == convs + fcs
    # Batch norm (the default) drops each conv's bias and adds a scale and a shift per channel.
    channels = 64 + 128 + 256 + 256 + 4 * 512
    assert count(build("vgg")) == convs + fcs - channels + 2 * channels


def test_alexnet_on_mnist_parameter_count():
    """3x3 first conv on small inputs; pools 28 -> 13 -> 6 -> 2, so 256*2*2 features."""
    convs = (3 * 3 * 1 + 1) * 96 + (5 * 5 * 96 + 1) * 256 + (3 * 3 * 256 + 1) * 384
    convs += (3 * 3 * 384 + 1) * 384 + (3 * 3 * 384 + 1) * 256
    fcs = (256 * 2 * 2 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 10
    assert count(build("alexnet")) == convs + fcs


def test_resnet18_matches_reference_counts():
    # The CIFAR ResNet-18 (3x3 stem) is the widely quoted 11,173,962 for 10 classes.
    assert count(build("resnet", (3, 32, 32))) == 11_173_962
    # With the ImageNet stem it is exactly torchvision's resnet18.
    assert count(build("resnet", (3, 224, 224), 1000)) == count(torchvision.models.resnet18(num_classes=1000))


def test_width_divisor_shrinks_every_layer():
    full, small = build("vgg", (3, 32, 32)), build("vgg", (3, 32, 32), width_divisor=4)
    full_widths = [m.out_channels for m in modules_of(full, nn.Conv2d)]
    assert [m.out_channels for m in modules_of(small, nn.Conv2d)] == [w // 4 for w in full_widths]
    assert [m.out_features for m in modules_of(small, nn.Linear)] == [1024, 1024, NUM_CLASSES]


# --- knobs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "knob", "value"),
    [
        ("lenet", "activation", "swish"),
        ("lenet", "pool", "median"),
        ("lenet", "init", "orthogonal"),
        ("mlp", "dropout", 1.5),
        ("mlp", "hidden", [200, 0]),
        ("softmax", "init", "zeros"),
        ("three_layer", "activation", "relu6"),
        ("three_layer", "channels", 0),
        ("convnet", "norm", "layer"),
        ("convnet", "channels", [32, -64]),
        ("alexnet", "width_divisor", 0),
        ("vgg", "conv_arch", [[1, 64], [2]]),
        ("vgg", "norm", "group"),
        ("vgg", "fc_width", -1),
        ("nin", "dropout", -0.1),
        ("googlenet", "activation", "softplus"),
        ("resnet", "blocks", [2, 0, 2, 2]),
        ("resnet", "width_divisor", 1.5),
        ("torchvision", "name", "not_a_model"),
        ("torchvision", "name", "fasterrcnn_resnet50_fpn"),
    ],
)
def test_invalid_knob_raises_value_error_naming_it(name, knob, value):
    overrides = {**SMALL[name], knob: value}
    with pytest.raises(ValueError, match=rf"model\.{knob}") as error:
        build(name, **overrides)
    assert repr(value) in str(error.value)  # the message quotes the offending value


def test_torchvision_model_too_small_for_the_input_is_rejected():
    # DenseNet-121 downsamples 32x, and its last transition pool gets a 1x1 map.
    with pytest.raises(ValueError, match=r"model\.name='densenet121' cannot run on inputs of shape \(1, 28, 28\)"):
        build("torchvision", name="densenet121")


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "googlenet"])
def test_torchvision_builders_adapt_channels_and_classes(name):
    model = build("torchvision", (1, 28, 28), 7, name=name)
    assert modules_of(model, nn.Conv2d)[0].in_channels == 1
    model.train()
    logits = model(torch.randn(2, 1, 28, 28))
    assert isinstance(logits, torch.Tensor)  # googlenet's auxiliary heads are off
    assert logits.shape == (2, 7)


def test_classic_lenet_sigmoid_and_average_pooling():
    model = build("lenet", activation="sigmoid", pool="avg")
    assert len(modules_of(model, nn.Sigmoid)) == 4
    assert len(modules_of(model, nn.AvgPool2d)) == 2 and not modules_of(model, nn.MaxPool2d)
    assert count(model) == count(build("lenet"))  # pooling and activations have no parameters
    features = model.features(torch.randn(4, 1, 28, 28))
    assert features.shape == (4, 16, 5, 5)
    assert ((features > 0) & (features < 1)).all()  # averages of sigmoids


def test_lenet_tanh():
    model = build("lenet", activation="tanh")
    features = model.features(torch.randn(4, 1, 28, 28) * 3)
    assert ((features > -1) & (features < 1)).all()
    assert (features < 0).any()
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, NUM_CLASSES)


@pytest.mark.parametrize("activation", ["leaky_relu", "gelu"])
def test_activation_knob_reaches_every_layer(activation):
    model = build("resnet", (3, 32, 32), width_divisor=16, activation=activation)
    kind = {"leaky_relu": nn.LeakyReLU, "gelu": nn.GELU}[activation]
    assert len(modules_of(model, kind)) == 1 + 2 * 8  # stem, then two per basic block
    assert not modules_of(model, nn.ReLU)


def test_norm_knob():
    assert len(modules_of(build("convnet"), nn.BatchNorm2d)) == 3
    plain = build("convnet", norm="none")
    assert not modules_of(plain, nn.BatchNorm2d)
    assert all(conv.bias is not None for conv in modules_of(plain, nn.Conv2d))


def first_linear_weight(model: nn.Module) -> torch.Tensor:
    return modules_of(model, nn.Linear)[0].weight.detach()


def test_init_schemes_give_their_standard_deviations():
    torch.manual_seed(0)
    fan_in, fan_out = 784, 200
    kaiming = build("mlp", init="kaiming")
    xavier = build("mlp", init="xavier")
    default = build("mlp", init="default")
    # kaiming normal: std = gain / sqrt(fan_in), gain sqrt(2) for ReLU
    assert first_linear_weight(kaiming).std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    # xavier uniform: std = gain * sqrt(2 / (fan_in + fan_out))
    assert first_linear_weight(xavier).std().item() == pytest.approx(
        math.sqrt(2) * math.sqrt(2 / (fan_in + fan_out)), rel=0.02
    )
    # PyTorch's default: uniform with bound 1/sqrt(fan_in), std = 1/sqrt(3 fan_in)
    assert first_linear_weight(default).std().item() == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.02)
    for model in (kaiming, xavier):
        assert all((m.bias == 0).all() for m in modules_of(model, nn.Linear))


def test_init_gain_follows_the_activation():
    torch.manual_seed(0)
    model = build("mlp", init="kaiming", activation="tanh")
    assert first_linear_weight(model).std().item() == pytest.approx((5 / 3) / math.sqrt(784), rel=0.02)


def test_init_reaches_conv_layers():
    torch.manual_seed(0)
    kaiming, xavier = (build("convnet", norm="none", init=scheme) for scheme in ("kaiming", "xavier"))
    k, x = (modules_of(m, nn.Conv2d)[2].weight.detach() for m in (kaiming, xavier))  # 3x3x64 -> 128
    assert k.std().item() == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.05)
    assert x.std().item() == pytest.approx(math.sqrt(2) * math.sqrt(2 / (9 * 64 + 9 * 128)), rel=0.05)


# --- other input sizes ---------------------------------------------------------------


def test_lenet_on_larger_images():
    # 64 -> pool 32 -> conv 28 -> pool 14: 16*14*14 features
    model = build("lenet", (1, 64, 64))
    expected = (5 * 5 * 1 + 1) * 6 + (5 * 5 * 6 + 1) * 16 + (16 * 14 * 14 + 1) * 120 + (120 + 1) * 84 + (84 + 1) * 10
    assert count(model) == expected
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize(
    ("name", "in_shape", "first_kernel", "overrides"),
    [
        ("resnet", (3, 96, 96), 7, {"width_divisor": 8}),
        ("resnet", (1, 64, 48), 3, {"width_divisor": 8}),  # smaller side under 64: CIFAR stem
        ("googlenet", (3, 96, 96), 7, {"width_divisor": 8}),
        ("alexnet", (3, 224, 224), 11, {"width_divisor": 16}),
        ("nin", (3, 224, 224), 11, {"width_divisor": 16}),
        ("vgg", (1, 64, 64), 3, {"width_divisor": 16}),
        ("convnet", (3, 96, 96), 3, {}),
    ],
)
def test_other_input_sizes(name, in_shape, first_kernel, overrides):
    model = build(name, in_shape, **overrides)
    assert modules_of(model, nn.Conv2d)[0].kernel_size == (first_kernel, first_kernel)
    model.train()
    logits = model(torch.randn(2, *in_shape))
    assert logits.shape == (2, NUM_CLASSES)
    assert torch.isfinite(logits).all()


def test_alexnet_on_imagenet_sized_input_keeps_the_paper_geometry():
    """224 -> conv 11/4 -> 55 -> pool 27 -> pool 13 -> pool 6, as in the paper."""
    model = build("alexnet", (3, 224, 224), width_divisor=16)
    assert model.features(torch.zeros(1, 3, 224, 224)).shape == (1, 256 // 16, 6, 6)


def test_safe_pool_skips_maps_smaller_than_its_window():
    pool = SafePool2d("max", 2)
    assert pool(torch.ones(1, 3, 1, 1)).shape == (1, 3, 1, 1)
    assert pool(torch.arange(16.0).view(1, 1, 4, 4)).tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]]
