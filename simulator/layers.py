"""What the simulator knows of a layer: its kind and shape, never its YAML or its torch module.

A ``LayerSpec`` is produced when the network runs (``shapes_of``), stored as trace attributes, and
read back by the engines. Convolutions are described per group: ``in_channels`` and
``out_channels`` are totals, ``groups`` splits both.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

CONV = "conv"
FC = "fc"


@dataclass(frozen=True)
class LayerSpec:
    name: str
    kind: str                      # "conv" or "fc"
    in_channels: int               # C (total, all groups)
    out_channels: int              # K (total, all groups)
    kernel: tuple[int, int]        # (Ky, Kx)
    stride: tuple[int, int]
    padding: tuple[int, int]
    groups: int
    input_hw: tuple[int, int]      # (H, W) before padding; (1, 1) for fc
    output_hw: tuple[int, int]     # (Oy, Ox); (1, 1) for fc

    @property
    def windows(self) -> int:
        """Output positions per filter (Ox*Oy); 1 for a fully connected layer."""
        return self.output_hw[0] * self.output_hw[1]

    @property
    def channels_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def filters_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def macs(self) -> int:
        """Multiply-accumulates for one input."""
        return self.windows * self.out_channels * self.channels_per_group * self.kernel[0] * self.kernel[1]

    @property
    def weight_count(self) -> int:
        return self.out_channels * self.channels_per_group * self.kernel[0] * self.kernel[1]

    @property
    def activation_count(self) -> int:
        """Input activations of one input (unpadded)."""
        return self.in_channels * self.input_hw[0] * self.input_hw[1]

    @property
    def output_count(self) -> int:
        return self.out_channels * self.windows

    def to_attrs(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("kernel", "stride", "padding", "input_hw", "output_hw"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> "LayerSpec":
        pair = lambda v: (int(v[0]), int(v[1]))  # noqa: E731
        return cls(
            name=str(attrs["name"]),
            kind=str(attrs["kind"]),
            in_channels=int(attrs["in_channels"]),
            out_channels=int(attrs["out_channels"]),
            kernel=pair(attrs["kernel"]),
            stride=pair(attrs["stride"]),
            padding=pair(attrs["padding"]),
            groups=int(attrs["groups"]),
            input_hw=pair(attrs["input_hw"]),
            output_hw=pair(attrs["output_hw"]),
        )


def compute_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers an accelerator computes (convolutions and fully connected), in definition order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def spec_of(name: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LayerSpec:
    """The spec of one layer from its input ``x`` and output ``y`` (batch first)."""
    if isinstance(module, nn.Conv2d):
        if not isinstance(module.padding, tuple):
            raise ValueError(f"layer {name}: padding {module.padding!r} is not supported; give explicit integers")
        return LayerSpec(name, CONV, module.in_channels, module.out_channels, _pair(module.kernel_size),
                         _pair(module.stride), _pair(module.padding), module.groups,
                         (int(x.shape[-2]), int(x.shape[-1])), (int(y.shape[-2]), int(y.shape[-1])))
    if isinstance(module, nn.Linear):
        return LayerSpec(name, FC, module.in_features, module.out_features, (1, 1), (1, 1), (0, 0), 1, (1, 1), (1, 1))
    raise TypeError(f"layer {name}: {type(module).__name__} is not a compute layer")


@torch.no_grad()
def shapes_of(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerSpec]:
    """Every compute layer's spec, found by running ``model`` once on zeros of ``input_shape`` (C, H, W)."""
    specs: list[LayerSpec] = []
    handles = [m.register_forward_hook(lambda m, a, y, n=n: specs.append(spec_of(n, m, a[0], y)))
               for n, m in compute_layers(model)]
    try:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device      # "meta" for a structure-only model
        model(torch.zeros((1, *input_shape), device=device))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return specs
