"""Data footprint and peak live activation memory (simulator/footprint.py)."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import SimulatorError
from simulator.footprint import Footprint, layer_footprint, network_footprint, peak_live_activation_bits
from simulator.layers import CONV, FC, LayerSpec


def conv(name: str, c: int, k: int, kernel: int, hw: int, out_hw: int, groups: int = 1) -> LayerSpec:
    return LayerSpec(name, CONV, c, k, (kernel, kernel), (1, 1), (0, 0), groups, (hw, hw), (out_hw, out_hw))


def fc(name: str, c: int, k: int) -> LayerSpec:
    return LayerSpec(name, FC, c, k, (1, 1), (1, 1), (0, 0), 1, (1, 1), (1, 1))


# 4 channels in 2 groups -> 6 filters of 2 channels x 3x3: 6*2*9 = 108 weights; 4*5*5 = 100 inputs.
GROUPED = conv("grouped", c=4, k=6, kernel=3, hw=5, out_hw=3, groups=2)
# 10 inputs -> 3 outputs: 30 weights, 10 inputs.
FC3 = fc("fc", c=10, k=3)


def test_grouped_conv_footprint_is_exact():
    f = layer_footprint(GROUPED, act_bits=8, weight_bits=4)
    assert f == Footprint(weight_bits=108 * 4, activation_bits=100 * 8,
                          weight_bits_fp32=108 * 32, activation_bits_fp32=100 * 32,
                          weight_bits_fixed16=108 * 16, activation_bits_fixed16=100 * 16)
    assert f.total_bits == 432 + 800
    assert f.reduction_vs_fp32 == pytest.approx(1 - 1232 / 6656)
    assert f.reduction_vs_fixed16 == pytest.approx(1 - 1232 / 3328)


def test_fc_footprint_is_exact():
    f = layer_footprint(FC3, act_bits=6, weight_bits=5)
    assert (f.weight_bits, f.activation_bits) == (150, 60)
    assert (f.weight_bits_fp32, f.activation_bits_fp32) == (960, 320)
    assert (f.weight_bits_fixed16, f.activation_bits_fixed16) == (480, 160)


def test_network_footprint_is_the_sum_of_its_layers():
    f = network_footprint([GROUPED, FC3], act_bits=[8, 6], weight_bits=[4, 5])
    assert f == layer_footprint(GROUPED, 8, 4) + layer_footprint(FC3, 6, 5)
    assert (f.weight_bits, f.activation_bits) == (432 + 150, 800 + 60)


def test_uniform_8_bits_saves_75_percent_of_fp32_and_half_of_fixed16():
    f = network_footprint([GROUPED, FC3], act_bits=[8, 8], weight_bits=[8, 8])
    assert f.reduction_vs_fp32 == pytest.approx(0.75)
    assert f.reduction_vs_fixed16 == pytest.approx(0.5)


def test_above_16_bits_the_reduction_vs_fixed16_is_negative():
    assert layer_footprint(FC3, 24, 24).reduction_vs_fixed16 == pytest.approx(-0.5)


def test_numpy_integer_precisions_are_accepted():
    assert layer_footprint(FC3, np.int64(6), np.int8(5)) == layer_footprint(FC3, 6, 5)


def test_empty_network_has_zero_footprint():
    f = network_footprint([], [], [])
    assert f.total_bits == 0 and f.reduction_vs_fp32 == 0.0


# A 3-layer chain: 1x6x6 -> conv3 -> 4x4x4 -> conv3 -> 8x2x2 -> fc -> 10.
CHAIN = [conv("c1", c=1, k=4, kernel=3, hw=6, out_hw=4),     # in 36, out 64
         conv("c2", c=4, k=8, kernel=3, hw=4, out_hw=2),     # in 64, out 32
         fc("f3", c=32, k=10)]                               # in 32, out 10


def test_peak_live_memory_on_a_chain():
    # c1: 36*2 + 64*8 = 584; c2: 64*8 + 32*8 = 768; f3: 32*8 + 10*8 = 336.
    assert peak_live_activation_bits(CHAIN, act_bits=[2, 8, 8], out_bits=[8, 8, 8]) == (768, "c2")
    # c1: 36*16 + 64*4 = 832; c2: 64*4 + 32*4 = 384; f3: 32*4 + 10*16 = 288.
    assert peak_live_activation_bits(CHAIN, act_bits=[16, 4, 4], out_bits=[4, 4, 16]) == (832, "c1")


def test_peak_live_memory_tie_names_the_first_layer():
    same = [fc("a", 8, 8), fc("b", 8, 8)]
    assert peak_live_activation_bits(same, [4, 4], [4, 4]) == (64, "a")


@pytest.mark.parametrize("call", [
    lambda: network_footprint(CHAIN, [8, 8], [8, 8, 8]),
    lambda: peak_live_activation_bits(CHAIN, [8, 8, 8], [8]),
    lambda: peak_live_activation_bits([], [], []),
    lambda: layer_footprint(FC3, 0, 8),
    lambda: layer_footprint(FC3, 8, 2.5),
    lambda: peak_live_activation_bits(CHAIN, [8, 8, 8], [8, -1, 8]),
])
def test_bad_arguments_raise_simulator_error(call):
    with pytest.raises(SimulatorError):
        call()
