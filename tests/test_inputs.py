"""Input sources: shapes, determinism, labels, preprocessing statistics, folder handling, errors."""
from __future__ import annotations

import json
import sys

import numpy as np
import pydantic
import pytest
import torch
from skimage import io
from sklearn.datasets import load_digits

from simulator.errors import SimulatorError
from simulator.inputs import (
    PHOTOS,
    InputSpec,
    describe,
    digits_split,
    load_inputs,
)


def _write_png(path, value: int, shape=(20, 30, 3)) -> None:
    image = np.full(shape, value, dtype=np.uint8)
    image[::2, ::3] = 255 - value   # some texture so resizing has work to do
    io.imsave(str(path), image, check_contrast=False)


@pytest.fixture
def folder(tmp_path):
    _write_png(tmp_path / "b.png", 40)
    _write_png(tmp_path / "a.png", 200, shape=(25, 18))   # grayscale
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("source", ["photos", "digits", "random", "folder"])
def test_shape_and_dtype(source, channels, size, folder):
    spec = InputSpec(source=source, count=3, path=str(folder) if source == "folder" else None)
    batch = load_inputs(spec, channels, size)
    assert batch.images.shape == (3, channels, size, size)
    assert batch.images.dtype == torch.float32
    assert torch.isfinite(batch.images).all()
    assert len(batch.ids) == 3
    if source == "digits":
        assert batch.labels is not None and batch.labels.dtype == torch.int64
        assert batch.labels.shape == (3,)
    else:
        assert batch.labels is None


def test_spec_size_overrides_model_default():
    batch = load_inputs(InputSpec(source="random", size=12), 2, 224)
    assert batch.images.shape == (1, 2, 12, 12)


@pytest.mark.parametrize("source", ["photos", "digits", "random", "folder"])
def test_same_spec_gives_identical_tensors(source, folder):
    spec = InputSpec(source=source, count=2, seed=5, path=str(folder) if source == "folder" else None)
    first, second = load_inputs(spec, 3, 24), load_inputs(spec, 3, 24)
    assert torch.equal(first.images, second.images)
    assert first.ids == second.ids


def test_random_seed_changes_tensors_and_ids():
    a = load_inputs(InputSpec(source="random", seed=1, count=2), 3, 8)
    b = load_inputs(InputSpec(source="random", seed=2, count=2), 3, 8)
    assert not torch.equal(a.images, b.images)
    assert a.ids == ["random:1:0", "random:1:1"]
    # Standard normal: mean near 0 and std near 1 over many samples.
    big = load_inputs(InputSpec(source="random", count=4), 3, 64).images
    assert abs(big.mean().item()) < 0.05 and abs(big.std().item() - 1) < 0.05


def test_digits_labels_match_load_digits():
    digits = load_digits()
    batch = load_inputs(InputSpec(source="digits", count=20, seed=3), 1, 8)
    indices = [int(i.split(":")[2]) for i in batch.ids]
    assert all(i.startswith("digits:test:") for i in batch.ids)
    assert batch.labels.tolist() == digits.target[indices].tolist()
    # At the native 8x8 size bilinear resampling is the identity: the pixels are (v/16 - 0.5)/0.5.
    expected = (digits.images[indices] / 16.0 - 0.5) / 0.5
    np.testing.assert_allclose(batch.images[:, 0].numpy(), expected, atol=1e-6)
    assert set(indices) <= set(digits_split()["test"].tolist())


def test_digits_draw_depends_on_seed_and_split():
    a = load_inputs(InputSpec(source="digits", count=10, seed=0), 3, 8)
    b = load_inputs(InputSpec(source="digits", count=10, seed=1), 3, 8)
    assert a.ids != b.ids
    assert torch.equal(a.images[:, 0], a.images[:, 2])   # gray replicated into 3 channels
    train = load_inputs(InputSpec(source="digits", count=10, split="train"), 1, 8)
    indices = {int(i.split(":")[2]) for i in train.ids}
    assert indices <= set(digits_split()["train"].tolist())
    assert all(i.startswith("digits:train:") for i in train.ids)


def test_digits_count_larger_than_split_is_an_error():
    with pytest.raises(SimulatorError, match="val"):
        load_inputs(InputSpec(source="digits", count=5000, split="val"), 1, 8)


def test_photo_normalisation_is_plausible():
    names = ["astronaut", "coffee", "chelsea", "rocket", "china", "flower"]
    batch = load_inputs(InputSpec(names=names, count=len(names)), 3, 64)
    assert batch.ids == [f"photo:{n}" for n in names]
    images = batch.images
    # Pixels in [0, 1] normalised by ImageNet mean/std land within these bounds.
    low = (0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    high = (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    per_channel_min = images.amin(dim=(0, 2, 3)).numpy()
    per_channel_max = images.amax(dim=(0, 2, 3)).numpy()
    assert (per_channel_min >= low - 1e-5).all() and (per_channel_max <= high + 1e-5).all()
    # Natural photographs are roughly ImageNet-like: overall mean near 0, spread near 1.
    assert abs(images.mean().item()) < 0.5
    assert 0.5 < images.std().item() < 1.6
    # Photographs differ from each other.
    assert not torch.equal(images[0], images[1])


def test_photo_grayscale_range():
    gray = load_inputs(InputSpec(names=["coffee"]), 1, 32).images
    assert gray.min() >= -1.0 and gray.max() <= 1.0
    assert gray.std() > 0.1


def test_photos_cycle_and_default_order():
    batch = load_inputs(InputSpec(names=["rocket", "chelsea"], count=5), 3, 16)
    assert batch.ids == ["photo:rocket", "photo:chelsea"] * 2 + ["photo:rocket"]
    assert torch.equal(batch.images[0], batch.images[2])
    default = load_inputs(InputSpec(count=2), 3, 16)
    assert default.ids == [f"photo:{n}" for n in list(PHOTOS)[:2]]


def test_unknown_photo_name_lists_valid_names():
    with pytest.raises(SimulatorError) as info:
        load_inputs(InputSpec(names=["astronaut", "dog"]), 3, 16)
    message = str(info.value)
    assert "'dog'" in message
    for name in ("astronaut", "coffee", "chelsea", "rocket", "china", "flower"):
        assert name in message
    with pytest.raises(SimulatorError, match="dog"):
        describe(InputSpec(names=["dog"]))


def test_folder_source_reads_sorted_images(folder):
    batch = load_inputs(InputSpec(source="folder", path=str(folder), count=3), 3, 16)
    assert batch.ids == ["folder:a.png", "folder:b.png", "folder:a.png"]
    # a.png is grayscale: its three channels carry the same pixels before normalisation.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    pixels = batch.images[0] * std + mean
    torch.testing.assert_close(pixels[0], pixels[1], atol=1e-5, rtol=0)
    assert not torch.equal(batch.images[0], batch.images[1])


def test_folder_rgba_image(tmp_path):
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)
    rgba[..., 0] = 255          # red, fully opaque on the left half, transparent on the right
    rgba[:, :5, 3] = 255
    io.imsave(str(tmp_path / "x.png"), rgba, check_contrast=False)
    batch = load_inputs(InputSpec(source="folder", path=str(tmp_path)), 3, 8)
    assert batch.images.shape == (1, 3, 8, 8)
    # Transparent pixels composite onto white: the right edge is white in every channel.
    std = torch.tensor([0.229, 0.224, 0.225])
    mean = torch.tensor([0.485, 0.456, 0.406])
    right = batch.images[0, :, :, -1].mean(dim=1) * std + mean
    torch.testing.assert_close(right, torch.ones(3), atol=1e-5, rtol=0)


def test_missing_and_empty_folder_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(SimulatorError, match="nope"):
        load_inputs(InputSpec(source="folder", path=str(missing)), 3, 16)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(SimulatorError, match="empty"):
        load_inputs(InputSpec(source="folder", path=str(empty)), 3, 16)
    with pytest.raises(SimulatorError, match="empty"):
        describe(InputSpec(source="folder", path=str(empty)))


def test_describe_changes_when_a_folder_file_changes(folder):
    spec = InputSpec(source="folder", path=str(folder))
    before = describe(spec)
    json.dumps(before)
    assert before == describe(spec)
    _write_png(folder / "b.png", 41)
    changed = describe(spec)
    assert changed["content_sha256"] != before["content_sha256"]
    _write_png(folder / "c.png", 41)
    assert describe(spec)["content_sha256"] != changed["content_sha256"]
    with_c = describe(spec)["content_sha256"]
    (folder / "notes.txt").write_text("ignored: not an image")
    assert describe(spec)["content_sha256"] == with_c


def test_describe_is_json_and_tracks_what_changes_the_tensors():
    base = describe(InputSpec(source="random", seed=1))
    json.dumps(base)
    assert base != describe(InputSpec(source="random", seed=2))
    assert describe(InputSpec(source="digits", split="val")) != describe(InputSpec(source="digits"))
    # A seed does not change photographs, so it does not change their description either.
    assert describe(InputSpec(seed=3)) == describe(InputSpec(seed=4))
    assert describe(InputSpec(count=2)) != describe(InputSpec(count=3))
    assert describe(InputSpec(names=["coffee"]))["names"] == ["coffee"]


def test_digits_split_partitions_without_overlap_and_is_stable():
    split = digits_split()
    n = len(load_digits().target)
    parts = [split["train"], split["val"], split["test"]]
    assert sum(len(p) for p in parts) == n
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    assert len(split["train"]) == round(0.6 * n) and len(split["val"]) == round(0.2 * n)
    again = digits_split()
    assert all(np.array_equal(split[k], again[k]) for k in split)
    other = digits_split(seed=1)
    assert not np.array_equal(split["test"], other["test"])


def test_spec_validation():
    with pytest.raises(pydantic.ValidationError, match="path"):
        InputSpec(source="folder")
    with pytest.raises(pydantic.ValidationError, match="names"):
        InputSpec(source="random", names=["coffee"])
    with pytest.raises(pydantic.ValidationError):
        InputSpec(colour=True)
    with pytest.raises(pydantic.ValidationError):
        InputSpec(count=0)
    spec = InputSpec()
    with pytest.raises(pydantic.ValidationError):
        spec.count = 3   # frozen


def test_unsupported_channel_count_is_an_error():
    with pytest.raises(SimulatorError, match="channels"):
        load_inputs(InputSpec(), 4, 16)
    assert load_inputs(InputSpec(source="random"), 4, 8).images.shape == (1, 4, 8, 8)


def test_missing_library_names_the_pip_package(monkeypatch):
    import simulator.inputs as inputs

    monkeypatch.setitem(sys.modules, "skimage.data", None)   # makes the import fail
    with pytest.raises(SimulatorError, match="'photos'.*scikit-image"):
        load_inputs(InputSpec(names=["coffee"]), 3, 16)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    inputs._digits_data.cache_clear()
    try:
        with pytest.raises(SimulatorError, match="'digits'.*scikit-learn"):
            load_inputs(InputSpec(source="digits"), 1, 8)
    finally:
        inputs._digits_data.cache_clear()
