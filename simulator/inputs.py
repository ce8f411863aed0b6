"""Where a workload's input tensors come from: bundled photographs, bundled digits, seeded noise,
or a local folder of images.

Real inputs matter here: the value-dependent engines (dynamic precision, essential bits) see the
activations a real image produces, which noise does not reproduce. The photographs ship with
scikit-image and scikit-learn and the digits with scikit-learn, so no download is ever needed;
both libraries are imported lazily so that the 'random' source works without them.

Every source is deterministic: the same ``InputSpec`` gives bit-identical tensors, and
``describe`` gives the JSON-able identity of the inputs that goes into the trace hash.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Literal

import numpy as np
import pydantic
import torch
from pydantic import ConfigDict, PositiveInt

from simulator.errors import SimulatorError

# ImageNet evaluation normalisation (the torchvision convention the zoo models expect).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Single-channel inputs (digits, grayscale photos) are mapped from [0, 1] to [-1, 1].
GRAY_MEAN = 0.5
GRAY_STD = 0.5
# Resize the short side to size*256/224 before the centre crop, as in ImageNet evaluation.
RESIZE_RATIO = 256 / 224

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DIGITS_SPLIT_FRACTIONS = (0.6, 0.2, 0.2)   # train, val, test
DIGITS_SPLIT_SEED = 0                      # the one fixed split used by training and evaluation
# Bumped whenever preprocessing changes, so old traces are not reused for new tensors.
PREPROCESS_VERSION = 1


def _skimage_photo(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        data = _require("skimage.data", "scikit-image", "photos")
        return getattr(data, name)()
    return load


def _motorcycle() -> np.ndarray:
    data = _require("skimage.data", "scikit-image", "photos")
    return data.stereo_motorcycle()[0]   # the left view of the stereo pair


def _sklearn_photo(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        datasets = _require("sklearn.datasets", "scikit-learn", "photos")
        sample = datasets.load_sample_images()
        for path, image in zip(sample.filenames, sample.images):
            if Path(path).name == filename:
                return image
        raise SimulatorError(f"input photo {filename!r} is missing from scikit-learn's sample images")
    return load


# Colour natural photographs bundled with the libraries, in the default order.
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage_photo("astronaut"),
    "coffee": _skimage_photo("coffee"),
    "chelsea": _skimage_photo("chelsea"),
    "rocket": _skimage_photo("rocket"),
    "china": _sklearn_photo("china.jpg"),
    "flower": _sklearn_photo("flower.jpg"),
    "motorcycle": _motorcycle,
}


class InputSpec(pydantic.BaseModel):
    """The input part of a workload: which source, how many inputs, and at what size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["photos", "digits", "random", "folder"] = "photos"
    names: list[str] | None = None   # photos: which bundled photographs; None = default order
    count: PositiveInt = 1           # number of inputs in the batch
    seed: int = 0                    # random tensors, and which digits are drawn
    size: PositiveInt | None = None  # image side after resize + centre crop; None = model default
    path: str | None = None          # folder source: a local directory of images
    split: Literal["train", "val", "test"] = "test"   # digits: which part of the fixed split

    @pydantic.model_validator(mode="after")
    def _fields_match_source(self) -> "InputSpec":
        if self.source == "folder" and not self.path:
            raise ValueError("source 'folder' needs 'path', a local directory of images")
        if self.path is not None and self.source != "folder":
            raise ValueError(f"'path' applies only to source 'folder', not {self.source!r}")
        if self.names is not None and self.source != "photos":
            raise ValueError(f"'names' applies only to source 'photos', not {self.source!r}")
        if self.names is not None and not self.names:
            raise ValueError("'names' is empty; leave it out for the default photographs")
        return self


@dataclass
class InputBatch:
    images: torch.Tensor          # float32, (N, C, H, W)
    labels: torch.Tensor | None   # int64 (N,) where known (digits), else None
    ids: list[str]                # a readable id per input, e.g. "photo:astronaut"


def load_inputs(spec: InputSpec, channels: int, size: int) -> InputBatch:
    """The batch of ``spec.count`` inputs with ``channels`` channels, ``spec.size`` (or ``size``,
    the model's default) pixels a side."""
    if channels <= 0 or size <= 0:
        raise SimulatorError(f"inputs need positive channels and size, got channels={channels}, size={size}")
    side = spec.size if spec.size is not None else size
    if spec.source == "random":
        return _random(spec, channels, side)
    if channels not in (1, 3):
        raise SimulatorError(f"input source {spec.source!r} gives 1 or 3 channels, the model needs {channels}")
    if spec.source == "photos":
        names = _cycle(_photo_names(spec), spec.count)
        arrays = [_preprocess(PHOTOS[name](), channels, side, f"photo {name!r}") for name in names]
        return InputBatch(_stack(arrays), None, [f"photo:{name}" for name in names])
    if spec.source == "digits":
        return _digits(spec, channels, side)
    files = _cycle(_folder_files(spec.path), spec.count)
    arrays = [_preprocess(_read_image(f), channels, side, f"image {str(f)!r}") for f in files]
    return InputBatch(_stack(arrays), None, [f"folder:{f.name}" for f in files])


def describe(spec: InputSpec) -> dict[str, Any]:
    """The identity of the inputs, JSON-able, for trace attributes and the trace hash.

    Only fields that change the tensors are included, so e.g. a ``seed`` on the photos source
    does not force a new trace; a folder contributes a hash of its files' names and bytes.
    """
    out: dict[str, Any] = {"source": spec.source, "count": spec.count, "size": spec.size}
    if spec.source == "photos":
        out["names"] = _photo_names(spec)
        out["preprocess"] = PREPROCESS_VERSION
    elif spec.source == "digits":
        out.update(split=spec.split, split_seed=DIGITS_SPLIT_SEED, seed=spec.seed,
                   preprocess=PREPROCESS_VERSION)
    elif spec.source == "random":
        out["seed"] = spec.seed
    else:
        files = _folder_files(spec.path)
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.name.encode() + b"\0")
            digest.update(hashlib.sha256(f.read_bytes()).digest())
        out.update(path=spec.path, files=[f.name for f in files], content_sha256=digest.hexdigest(),
                   preprocess=PREPROCESS_VERSION)
    return out


def digits_split(seed: int = 0) -> dict[str, np.ndarray]:
    """A fixed partition of the ``load_digits`` indices into train/val/test (60/20/20).

    Depends only on ``seed`` (and the dataset size), so training and accuracy evaluation agree on
    which digits are held out. Each part is sorted.
    """
    n = len(_digits_data()[1])
    order = np.random.default_rng(seed).permutation(n)
    n_train = round(n * DIGITS_SPLIT_FRACTIONS[0])
    n_val = round(n * DIGITS_SPLIT_FRACTIONS[1])
    return {
        "train": np.sort(order[:n_train]),
        "val": np.sort(order[n_train:n_train + n_val]),
        "test": np.sort(order[n_train + n_val:]),
    }


# --- sources -------------------------------------------------------------------------------------

def _random(spec: InputSpec, channels: int, side: int) -> InputBatch:
    generator = torch.Generator().manual_seed(spec.seed)
    images = torch.randn((spec.count, channels, side, side), generator=generator, dtype=torch.float32)
    return InputBatch(images, None, [f"random:{spec.seed}:{i}" for i in range(spec.count)])


def _digits(spec: InputSpec, channels: int, side: int) -> InputBatch:
    images, targets = _digits_data()
    part = digits_split(DIGITS_SPLIT_SEED)[spec.split]
    if spec.count > len(part):
        raise SimulatorError(f"input count {spec.count} exceeds the {len(part)} digits in split {spec.split!r}")
    chosen = np.random.default_rng(spec.seed).permutation(part)[:spec.count]
    # Digits are 8x8 with values 0..16: scale to [0, 1], upscale, then map to [-1, 1].
    small = torch.from_numpy(images[chosen].astype(np.float32) / 16.0).unsqueeze(1)
    big = torch.nn.functional.interpolate(small, size=(side, side), mode="bilinear", align_corners=False)
    big = (big - GRAY_MEAN) / GRAY_STD
    if channels == 3:
        big = big.repeat(1, 3, 1, 1)
    labels = torch.from_numpy(targets[chosen].astype(np.int64))
    return InputBatch(big.contiguous(), labels, [f"digits:{spec.split}:{i}" for i in chosen.tolist()])


@functools.lru_cache(maxsize=1)
def _digits_data() -> tuple[np.ndarray, np.ndarray]:
    datasets = _require("sklearn.datasets", "scikit-learn", "digits")
    bunch = datasets.load_digits()
    images, targets = bunch.images.copy(), bunch.target.copy()
    images.flags.writeable = False   # cached and shared: nobody may change them
    targets.flags.writeable = False
    return images, targets


def _photo_names(spec: InputSpec) -> list[str]:
    names = list(spec.names) if spec.names is not None else list(PHOTOS)
    unknown = [n for n in names if n not in PHOTOS]
    if unknown:
        raise SimulatorError(f"unknown photo {unknown[0]!r}; valid names: {', '.join(PHOTOS)}")
    return names


def _folder_files(path: str | None) -> list[Path]:
    folder = Path(path or "")
    if not folder.is_dir():
        raise SimulatorError(f"input folder {path!r} does not exist or is not a directory")
    files = sorted((f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS),
                   key=lambda f: f.name)
    if not files:
        raise SimulatorError(f"input folder {path!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def _read_image(path: Path) -> np.ndarray:
    io = _require("skimage.io", "scikit-image", "folder")
    try:
        return io.imread(str(path))
    except Exception as exc:  # any decoder failure becomes one line naming the file
        raise SimulatorError(f"cannot read input image {str(path)!r}: {exc}") from exc


# --- preprocessing -------------------------------------------------------------------------------

def _preprocess(image: np.ndarray, channels: int, side: int, what: str) -> np.ndarray:
    """ImageNet-evaluation preprocessing: resize the short side to side*256/224 with
    anti-aliasing, centre-crop side x side, scale to [0, 1] and normalise; returns (C, side, side)."""
    color = _require("skimage.color", "scikit-image", "photos")
    transform = _require("skimage.transform", "scikit-image", "photos")
    util = _require("skimage.util", "scikit-image", "photos")
    rgb = _as_rgb(util.img_as_float64(image), color, what)
    h, w = rgb.shape[:2]
    short = round(side * RESIZE_RATIO)
    scale = short / min(h, w)
    new_hw = (max(round(h * scale), side), max(round(w * scale), side))
    resized = transform.resize(rgb, new_hw, order=1, anti_aliasing=True, mode="reflect")
    top, left = (new_hw[0] - side) // 2, (new_hw[1] - side) // 2
    crop = np.clip(resized[top:top + side, left:left + side], 0.0, 1.0)
    if channels == 1:
        gray = color.rgb2gray(crop)
        return ((gray - GRAY_MEAN) / GRAY_STD)[None].astype(np.float32)
    normed = (crop - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)
    return normed.transpose(2, 0, 1).astype(np.float32)


def _as_rgb(image: np.ndarray, color: ModuleType, what: str) -> np.ndarray:
    """(H, W, 3) floats in [0, 1] from grayscale, gray+alpha, RGB or RGBA pixels."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return color.gray2rgb(image)
    if image.ndim == 3 and image.shape[2] == 2:      # gray + alpha: drop the alpha
        return color.gray2rgb(image[:, :, 0])
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:      # composite onto white, as viewers show it
        return color.rgba2rgb(image)
    raise SimulatorError(f"{what} has pixel array shape {image.shape}; expected gray, RGB or RGBA")


def _stack(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).contiguous()


def _cycle(items: list, count: int) -> list:
    return [items[i % len(items)] for i in range(count)]


def _require(module: str, pip_name: str, source: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SimulatorError(f"input source {source!r} needs the pip package {pip_name!r} "
                             f"(pip install {pip_name})") from exc
