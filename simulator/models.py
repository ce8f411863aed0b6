"""The model zoo: plain-torch builders for the networks the papers evaluate.

Every model is built from its paper's (or its Caffe model-zoo) definition, initialised from a seed
(Kaiming-normal weights, zero biases, identity BatchNorm) and returned in eval mode. The dotted
module path of each convolution / fully connected layer (``named_modules()``) is the layer name used
in precision profiles, so names are chosen to be short and stable: ``conv1_1`` (VGG), ``conv2`` /
``fc6`` (AlexNet), ``inception_3a.b2`` (GoogLeNet), ``layer1.0.conv1`` (ResNet), ...

``width`` is a WRPN-style multiplier (Mishra et al., "WRPN: Wide Reduced-Precision Networks", ICLR
2018): it scales every hidden layer's channel / feature count, never the input channels nor the
classes, so the inner layers' MACs grow with its square.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from simulator.errors import SimulatorError


@dataclass(frozen=True)
class ModelInfo:
    builder: Callable[..., nn.Module]   # builder(num_classes, width, in_channels) -> nn.Module
    in_channels: int                    # 3, or 1 for lenet5
    image_size: int                     # default input side
    num_classes: int                    # default number of classes
    description: str                    # one line, with the paper it follows

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Default (C, H, W) of one input."""
        return (self.in_channels, self.image_size, self.image_size)


# ---------------------------------------------------------------------------------------- helpers

def _scaled(channels: int, width: float, divisor: int = 1) -> int:
    """``channels * width`` rounded to a multiple of ``divisor`` (a grouped layer's groups), at least one group."""
    return max(divisor, int(round(channels * width / divisor)) * divisor)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1,
          bias: bool = True) -> nn.Conv2d:
    # Explicit integer padding only: LayerSpec and the engines need the number, not 'same'.
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=int(padding), groups=groups, bias=bias)


def _caffe_pool(kernel: int, stride: int, padding: int = 0) -> nn.MaxPool2d:
    # Caffe rounds pooling output sizes up; this is what keeps AlexNet/NiN/GoogLeNet's
    # published feature-map sizes (e.g. 55 -> 27 -> 13 -> 6) and makes 224 and 227 agree after pool1.
    return nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)


def _lrn() -> nn.LocalResponseNorm:
    # Caffe's ACROSS_CHANNELS LRN (local_size 5, alpha 1e-4, beta 0.75); torch also divides alpha by size.
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)


# ---------------------------------------------------------------------------------------- LeNet-5

def _lenet5(num_classes: int, width: float, in_channels: int) -> nn.Module:
    """LeCun et al., 1998, with ReLU and max pooling (the Caffe MNIST variant's choices)."""
    c1, c2 = _scaled(6, width), _scaled(16, width)
    f1, f2 = _scaled(120, width), _scaled(84, width)
    return nn.Sequential(OrderedDict([
        ("conv1", _conv(in_channels, c1, 5)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2, 2)),
        ("conv2", _conv(c1, c2, 5)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2, 2)),
        # Identity at 32x32; lets other input sizes reach fc1 with its 5x5 layout.
        ("avgpool", nn.AdaptiveAvgPool2d(5)), ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(c2 * 25, f1)), ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(f1, f2)), ("relu4", nn.ReLU()),
        ("fc3", nn.Linear(f2, num_classes)),
    ]))


# ---------------------------------------------------------------------------------------- small VGG

def _vgg_small(num_classes: int, width: float, in_channels: int) -> nn.Module:
    """A small VGG-style CNN for 32x32 digits: the VGG recipe (stages of two 3x3 convolutions, a 2x2
    max pool after each) at 16/32/64 channels, then two fully connected layers. It is the project's
    deeper second network on the digits, next to LeNet-5, for comparing precision-search methods."""
    layers: list[tuple[str, nn.Module]] = []
    cin = in_channels
    for stage, channels in enumerate((16, 32, 64), start=1):
        cout = _scaled(channels, width)
        for i in (1, 2):
            layers += [(f"conv{stage}_{i}", _conv(cin, cout, 3, padding=1)), (f"relu{stage}_{i}", nn.ReLU())]
            cin = cout
        layers.append((f"pool{stage}", nn.MaxPool2d(2, 2)))
    f4 = _scaled(128, width)
    layers += [
        # Identity at 32x32; lets other input sizes reach fc4 with its 4x4 layout.
        ("avgpool", nn.AdaptiveAvgPool2d(4)), ("flatten", nn.Flatten()),
        ("fc4", nn.Linear(cin * 16, f4)), ("relu4", nn.ReLU()),
        ("fc5", nn.Linear(f4, num_classes)),
    ]
    return nn.Sequential(OrderedDict(layers))


# ---------------------------------------------------------------------------------------- AlexNet

def _alexnet(num_classes: int, width: float, in_channels: int) -> nn.Module:
    """Krizhevsky et al., NIPS 2012, as in Caffe's bvlc_alexnet: two towers kept as groups=2."""
    c1 = _scaled(96, width, 2)      # conv1 feeds a groups=2 layer, so it stays even
    c2 = _scaled(256, width, 2)
    c3 = _scaled(384, width, 2)
    c4 = _scaled(384, width, 2)
    c5 = _scaled(256, width, 2)
    f6, f7 = _scaled(4096, width), _scaled(4096, width)
    return nn.Sequential(OrderedDict([
        ("conv1", _conv(in_channels, c1, 11, stride=4)), ("relu1", nn.ReLU()), ("norm1", _lrn()),
        ("pool1", _caffe_pool(3, 2)),
        ("conv2", _conv(c1, c2, 5, padding=2, groups=2)), ("relu2", nn.ReLU()), ("norm2", _lrn()),
        ("pool2", _caffe_pool(3, 2)),
        ("conv3", _conv(c2, c3, 3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", _conv(c3, c4, 3, padding=1, groups=2)), ("relu4", nn.ReLU()),
        ("conv5", _conv(c4, c5, 3, padding=1, groups=2)), ("relu5", nn.ReLU()),
        ("pool5", _caffe_pool(3, 2)),
        ("avgpool", nn.AdaptiveAvgPool2d(6)), ("flatten", nn.Flatten()),   # any input size reaches 6x6
        ("fc6", nn.Linear(c5 * 36, f6)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout()),
        ("fc7", nn.Linear(f6, f7)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout()),
        ("fc8", nn.Linear(f7, num_classes)),
    ]))


# ---------------------------------------------------------------------------------------- VGG

# Simonyan & Zisserman, ICLR 2015, table 1: convolutions per stage for configurations D and E.
_VGG_STAGES = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_VGG_CHANNELS = (64, 128, 256, 512, 512)


def _vgg(convs_per_stage: tuple[int, ...]) -> Callable[[int, float, int], nn.Module]:
    def build(num_classes: int, width: float, in_channels: int) -> nn.Module:
        layers: list[tuple[str, nn.Module]] = []
        cin = in_channels
        for stage, (n, channels) in enumerate(zip(convs_per_stage, _VGG_CHANNELS), start=1):
            cout = _scaled(channels, width)
            for i in range(1, n + 1):
                layers += [(f"conv{stage}_{i}", _conv(cin, cout, 3, padding=1)), (f"relu{stage}_{i}", nn.ReLU())]
                cin = cout
            layers.append((f"pool{stage}", nn.MaxPool2d(2, 2)))
        f6, f7 = _scaled(4096, width), _scaled(4096, width)
        layers += [
            ("avgpool", nn.AdaptiveAvgPool2d(7)), ("flatten", nn.Flatten()),
            ("fc6", nn.Linear(cin * 49, f6)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout()),
            ("fc7", nn.Linear(f6, f7)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout()),
            ("fc8", nn.Linear(f7, num_classes)),
        ]
        return nn.Sequential(OrderedDict(layers))
    return build


# ---------------------------------------------------------------------------------------- NiN

def _nin(num_classes: int, width: float, in_channels: int) -> nn.Module:
    """Lin et al., "Network In Network", ICLR 2014; the ImageNet model of the Caffe model zoo.

    Four mlpconv blocks (a spatial conv followed by two 1x1 "cccp" convs), the last ending in one
    map per class that global average pooling turns into scores: 12 convolutions, no fc.
    """
    c1, c2, c3, c4 = (_scaled(c, width) for c in (96, 256, 384, 1024))
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", _conv(in_channels, c1, 11, stride=4)), ("relu1", nn.ReLU()),
        ("cccp1", _conv(c1, c1, 1)), ("relu_cccp1", nn.ReLU()),
        ("cccp2", _conv(c1, c1, 1)), ("relu_cccp2", nn.ReLU()),
        ("pool1", _caffe_pool(3, 2)),
        ("conv2", _conv(c1, c2, 5, padding=2)), ("relu2", nn.ReLU()),
        ("cccp3", _conv(c2, c2, 1)), ("relu_cccp3", nn.ReLU()),
        ("cccp4", _conv(c2, c2, 1)), ("relu_cccp4", nn.ReLU()),
        ("pool2", _caffe_pool(3, 2)),
        ("conv3", _conv(c2, c3, 3, padding=1)), ("relu3", nn.ReLU()),
        ("cccp5", _conv(c3, c3, 1)), ("relu_cccp5", nn.ReLU()),
        ("cccp6", _conv(c3, c3, 1)), ("relu_cccp6", nn.ReLU()),
        ("pool3", _caffe_pool(3, 2)), ("drop", nn.Dropout()),
        # Caffe names these conv4-1024, cccp7-1024, cccp8-1024; shortened to plain identifiers.
        ("conv4", _conv(c3, c4, 3, padding=1)), ("relu4", nn.ReLU()),
        ("cccp7", _conv(c4, c4, 1)), ("relu_cccp7", nn.ReLU()),
        ("cccp8", _conv(c4, num_classes, 1)), ("relu_cccp8", nn.ReLU()),
        ("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
    ]
    return nn.Sequential(OrderedDict(layers))


# ---------------------------------------------------------------------------------------- GoogLeNet

class Inception(nn.Module):
    """One Inception (v1) module: 1x1 | 1x1->3x3 | 1x1->5x5 | 3x3 max pool->1x1, concatenated."""

    def __init__(self, cin: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int, pool_proj: int):
        super().__init__()
        self.b1 = _conv(cin, c1, 1)
        self.b2_reduce = _conv(cin, c3_reduce, 1)
        self.b2 = _conv(c3_reduce, c3, 3, padding=1)
        self.b3_reduce = _conv(cin, c5_reduce, 1)
        self.b3 = _conv(c5_reduce, c5, 5, padding=2)
        self.b4_pool = nn.MaxPool2d(3, 1, 1, ceil_mode=True)
        self.b4 = _conv(cin, pool_proj, 1)
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu = torch.relu
        return torch.cat([
            relu(self.b1(x)),
            relu(self.b2(relu(self.b2_reduce(x)))),
            relu(self.b3(relu(self.b3_reduce(x)))),
            relu(self.b4(self.b4_pool(x))),
        ], dim=1)


# Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, table 1:
# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); "pool" marks a 3x3/2 max pool.
_GOOGLENET_MODULES: tuple[tuple[str, tuple[int, ...]] | str, ...] = (
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    "pool",
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    "pool",
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
)


def _googlenet(num_classes: int, width: float, in_channels: int) -> nn.Module:
    """Inception v1 as in Caffe's bvlc_googlenet, without the two auxiliary classifiers."""
    c1, c2r, c2 = _scaled(64, width), _scaled(64, width), _scaled(192, width)
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", _conv(in_channels, c1, 7, stride=2, padding=3)), ("relu1", nn.ReLU()),
        ("pool1", _caffe_pool(3, 2)), ("norm1", _lrn()),
        ("conv2_reduce", _conv(c1, c2r, 1)), ("relu2_reduce", nn.ReLU()),
        ("conv2", _conv(c2r, c2, 3, padding=1)), ("relu2", nn.ReLU()), ("norm2", _lrn()),
        ("pool2", _caffe_pool(3, 2)),
    ]
    cin, pools = c2, 2
    for entry in _GOOGLENET_MODULES:
        if entry == "pool":
            pools += 1
            layers.append((f"pool{pools}", _caffe_pool(3, 2)))
            continue
        tag, channels = entry
        module = Inception(cin, *(_scaled(c, width) for c in channels))
        layers.append((f"inception_{tag}", module))
        cin = module.out_channels
    layers += [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("drop", nn.Dropout(0.4)),
               ("fc", nn.Linear(cin, num_classes))]
    return nn.Sequential(OrderedDict(layers))


# ---------------------------------------------------------------------------------------- ResNet

class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (He et al., CVPR 2016, ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = _conv(cin, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _shortcut(cin, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) and a shortcut (ResNet-50/101/152).

    The stride sits on the 3x3 convolution (the common "v1.5" placement, ≈4.1 GMAC for ResNet-50;
    the paper's original stride-on-1x1 gives ≈3.9).
    """

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = _conv(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module | None:
    """Projection shortcut (1x1 conv + BN) where the shape changes, identity otherwise."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(OrderedDict([("0", _conv(cin, cout, 1, stride=stride, bias=False)),
                                      ("1", nn.BatchNorm2d(cout))]))


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock] | type[Bottleneck], blocks_per_stage: tuple[int, ...],
                 num_classes: int, width: float, in_channels: int):
        super().__init__()
        stem = _scaled(64, width)
        self.conv1 = _conv(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = stem
        for stage, (n, planes) in enumerate(zip(blocks_per_stage, (64, 128, 256, 512)), start=1):
            planes = _scaled(planes, width)
            blocks = []
            for i in range(n):
                blocks.append(block(cin, planes, 2 if (i == 0 and stage > 1) else 1))
                cin = planes * block.expansion
            self.add_module(f"layer{stage}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _resnet18(num_classes: int, width: float, in_channels: int) -> nn.Module:
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, width, in_channels)


def _resnet50(num_classes: int, width: float, in_channels: int) -> nn.Module:
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, width, in_channels)


# ---------------------------------------------------------------------------------------- MobileNetV2

class InvertedResidual(nn.Module):
    """1x1 expand (xt), 3x3 depthwise (groups = channels), 1x1 linear project; residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        if expansion != 1:
            self.expand = _conv(cin, hidden, 1, bias=False)
            self.expand_bn = nn.BatchNorm2d(hidden)
        self.depthwise = _conv(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False)
        self.depthwise_bn = nn.BatchNorm2d(hidden)
        self.project = _conv(hidden, cout, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "expand"):
            y = nn.functional.relu6(self.expand_bn(self.expand(y)))
        y = nn.functional.relu6(self.depthwise_bn(self.depthwise(y)))
        y = self.project_bn(self.project(y))     # linear bottleneck: no activation
        return x + y if self.residual else y


# Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018, table 2:
# (expansion t, output channels c, repeats n, first stride s).
_MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int, width: float, in_channels: int):
        super().__init__()
        stem = _scaled(32, width)
        self.conv1 = _conv(in_channels, stem, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        blocks, cin = [], stem
        for t, c, n, s in _MOBILENET_V2_STAGES:
            cout = _scaled(c, width)
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        last = _scaled(1280, width)
        self.conv_last = _conv(cin, last, 1, bias=False)
        self.bn_last = nn.BatchNorm2d(last)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self.bn1(self.conv1(x)))
        x = self.blocks(x)
        x = nn.functional.relu6(self.bn_last(self.conv_last(x)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


# ---------------------------------------------------------------------------------------- the zoo

ZOO: dict[str, ModelInfo] = {
    "lenet5": ModelInfo(_lenet5, 1, 32, 10,
                        "LeNet-5 (LeCun et al., Proc. IEEE 1998) with ReLU and max pooling, 32x32 digits"),
    "vgg_small": ModelInfo(_vgg_small, 1, 32, 10,
                           "small VGG-style CNN (3 stages of two 3x3 convs, 16/32/64 channels, fc 128), 32x32 digits"),
    "alexnet": ModelInfo(_alexnet, 3, 227, 1000,
                         "AlexNet (Krizhevsky et al., NIPS 2012), Caffe bvlc_alexnet: grouped conv2/4/5, LRN"),
    "vgg16": ModelInfo(_vgg(_VGG_STAGES["vgg16"]), 3, 224, 1000,
                       "VGG-16, configuration D (Simonyan & Zisserman, ICLR 2015)"),
    "vgg19": ModelInfo(_vgg(_VGG_STAGES["vgg19"]), 3, 224, 1000,
                       "VGG-19, configuration E (Simonyan & Zisserman, ICLR 2015)"),
    "nin": ModelInfo(_nin, 3, 224, 1000,
                     "Network in Network (Lin et al., ICLR 2014), Caffe model-zoo ImageNet version, 12 convs"),
    "googlenet": ModelInfo(_googlenet, 3, 224, 1000,
                           "GoogLeNet / Inception v1 (Szegedy et al., CVPR 2015), no auxiliary classifiers"),
    "resnet18": ModelInfo(_resnet18, 3, 224, 1000,
                          "ResNet-18 (He et al., CVPR 2016) with BatchNorm"),
    "resnet50": ModelInfo(_resnet50, 3, 224, 1000,
                          "ResNet-50 (He et al., CVPR 2016), bottleneck stride on the 3x3 conv"),
    "mobilenet_v2": ModelInfo(MobileNetV2, 3, 224, 1000,
                              "MobileNetV2 (Sandler et al., CVPR 2018), depthwise 3x3, expansion 6"),
}


def _initialise(model: nn.Module, seed: int) -> None:
    """Seeded Kaiming-normal (fan_in, ReLU gain) weights, zero biases, identity BatchNorm.

    A local generator keeps the global torch RNG untouched, so building a model never changes the
    random numbers drawn elsewhere (e.g. by a random input source).
    """
    gen = torch.Generator().manual_seed(seed)
    covered: set[int] = set()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()          # (in / groups) * Ky * Kx
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=gen)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.fill_(1.0)
                module.bias.zero_()
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.num_batches_tracked.zero_()
            else:
                continue
            covered.update(id(t) for t in (*module.parameters(recurse=False), *module.buffers(recurse=False)))
    left = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if id(t) not in covered]
    if left:   # a new module type in a builder must get an initialisation rule here
        raise RuntimeError(f"no initialisation rule for {left[0]}")


def _load_weights(model: nn.Module, path: Path) -> None:
    """Load a local state_dict, refusing any mismatch with a one-line error naming the first bad key."""
    if not path.is_file():
        raise SimulatorError(f"weights file not found: {path}")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is the user's input error
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SimulatorError(f"weights file {path} is not a readable torch state_dict: {first_line}") from None
    if not isinstance(state, Mapping):
        raise SimulatorError(f"weights file {path} holds a {type(state).__name__}, not a state_dict")
    expected = model.state_dict()
    problems: list[str] = []
    for key, tensor in expected.items():
        if key not in state:
            problems.append(f"missing key '{key}'")
        elif not isinstance(state[key], torch.Tensor):
            problems.append(f"key '{key}' is a {type(state[key]).__name__}, not a tensor")
        elif tuple(state[key].shape) != tuple(tensor.shape):
            problems.append(f"key '{key}' has shape {tuple(state[key].shape)}, the model needs {tuple(tensor.shape)}")
    problems += [f"unexpected key '{key}'" for key in state if key not in expected]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SimulatorError(f"weights file {path} does not match the model: {problems[0]}{more}")
    model.load_state_dict(state, strict=True)


def build_model(name: str, *, num_classes: int | None = None, width: float = 1.0, seed: int = 0,
                weights: str | Path | None = None, in_channels: int | None = None,
                structure_only: bool = False) -> nn.Module:
    """Build zoo model ``name``, seeded (or loaded from a local ``weights`` state_dict), in eval mode.
    ``structure_only`` returns it on the meta device, unfilled: enough for shapes, free to build."""
    info = ZOO.get(name)
    if info is None:
        raise SimulatorError(f"unknown model '{name}'; valid names: {', '.join(ZOO)}")
    num_classes = info.num_classes if num_classes is None else num_classes
    in_channels = info.in_channels if in_channels is None else in_channels
    if num_classes < 1:
        raise SimulatorError(f"model {name}: num_classes must be at least 1, got {num_classes}")
    if in_channels < 1:
        raise SimulatorError(f"model {name}: in_channels must be at least 1, got {in_channels}")
    if not (width > 0 and math.isfinite(width)):
        raise SimulatorError(f"model {name}: width must be a positive number, got {width}")
    # Built on the meta device: no memory and no default (global-RNG) init until our seeded one.
    with torch.device("meta"):
        model = info.builder(num_classes, width, in_channels)
    if structure_only:
        return model.eval()
    model = model.to_empty(device="cpu")
    _initialise(model, seed)
    if weights is not None:
        _load_weights(model, Path(weights))
    return model.eval()
