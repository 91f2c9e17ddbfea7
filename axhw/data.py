"""Data sets for evaluation, calibration and retraining.

Two sources, named by a *spec* string that every command accepts:

``"digits"``
    scikit-learn's bundled handwritten digits (1,797 grey 8x8 images, 10 classes),
    so the demo needs no download.  One seeded permutation splits it once and for
    all into ``train`` (50 %, 898 images), ``val`` (15 %, 270), ``search`` (15 %, 270)
    and ``test`` (20 %, 359); ``calib`` is the first :data:`DIGITS_CALIB_SIZE` images
    of ``train``.  Training and calibration read ``train``, choosing epochs reads
    ``val``, sensitivity profiles and search evaluations read ``search``, and only the
    final figure of a chosen configuration reads ``test`` (docs/accuracy.md).  Images are scaled to [0, 1], upsampled bilinearly to
    ``image_size`` (default :data:`DIGITS_IMAGE_SIZE`) and normalized with the mean
    and standard deviation of the training split.

``"imagefolder:PATH"``
    a torchvision :class:`~torchvision.datasets.ImageFolder` tree.  A split with its
    own sub-folder (``train/``, ``val/``, ``search/``, ``test/``, ``calib/``) reads it
    (``calib`` falls back to ``train/``).  A split without one is carved, by a seeded
    permutation that is printed once, out of a folder that has no other use, never
    shared with another split: ``search`` and ``test`` out of ``val/`` when there is
    no ``test/`` (val 20 % / search 40 % / test 40 %), ``search`` out of ``val/`` when
    there is a ``test/`` (val 50 % / search 50 %); a folder without split sub-folders
    is split into train 60 % / val 10 % / search 15 % / test 15 %.  Anything else (for
    example a ``test/`` alone when a step needs ``train``) is a :class:`DataError`.  Images are resized,
    center-cropped to ``image_size`` (default 224) and normalized with the
    ImageNet mean and standard deviation, as timm's evaluation transforms do.
"""

from __future__ import annotations

import functools
import pickle
import sys
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from axhw.errors import DataError

__all__ = [
    "SPLITS",
    "DIGITS_IMAGE_SIZE",
    "DIGITS_CALIB_SIZE",
    "DIGITS_SPLIT_SEED",
    "DIGITS_FRACTIONS",
    "split_sizes",
    "DigitsDataset",
    "parse_spec",
    "get_dataset",
    "get_loader",
    "num_classes",
    "load_checkpoint",
    "export_digits",
]

#: Split names every spec understands.
SPLITS: Final[tuple[str, ...]] = ("train", "val", "search", "test", "calib")
#: Default side of the upsampled digits images, in pixels.
DIGITS_IMAGE_SIZE: Final[int] = 16
#: Number of training images in the ``calib`` split of ``digits``.
DIGITS_CALIB_SIZE: Final[int] = 256
#: Seed of the one permutation that splits ``digits``; changing it changes every split.
DIGITS_SPLIT_SEED: Final[int] = 0
#: Share of each digits split; val is large enough not to sit at 100 % (it chooses
#: retraining epochs) and search is disjoint from test (search selects, test reports).
DIGITS_FRACTIONS: Final[dict[str, float]] = {"train": 0.5, "val": 0.15, "search": 0.15, "test": 0.2}
#: Seed of the permutation that carves missing splits out of an image folder.
IMAGEFOLDER_SPLIT_SEED: Final[int] = 0
_IMAGENET_MEAN: Final[tuple[float, float, float]] = (0.485, 0.456, 0.406)
_IMAGENET_STD: Final[tuple[float, float, float]] = (0.229, 0.224, 0.225)
_IMAGE_EXTENSIONS: Final[tuple[str, ...]] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """Split a data spec into its kind (``"digits"`` or ``"imagefolder"``) and path.

    Raises:
        DataError: the spec names neither source, or an image folder that does not exist.
    """
    if not isinstance(spec, str):
        raise DataError(f"data spec must be a string such as 'digits' or 'imagefolder:PATH', got {spec!r}")
    if spec == "digits":
        return "digits", None
    if spec.startswith("imagefolder:"):
        raw = spec[len("imagefolder:"):]
        if not raw:
            raise DataError("data spec 'imagefolder:' has no path; write 'imagefolder:/path/to/images'")
        path = Path(raw).expanduser()
        if not path.is_dir():
            raise DataError(
                f"image folder {str(path)!r} (from data spec {spec!r}) does not exist or is not a folder; "
                "point it at a folder of class sub-folders, or one with train/ val/ test/ inside"
            )
        return "imagefolder", path
    raise DataError(f"unknown data spec {spec!r}; use 'digits' or 'imagefolder:PATH'")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


# ----------------------------------------------------------------------------- digits


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Images in [0, 1] (float32, N x 8 x 8), labels (int64) and index arrays per split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(labels))
    index = _carve(order, DIGITS_FRACTIONS)
    index["calib"] = index["train"][:DIGITS_CALIB_SIZE]
    return images, labels, index


def _carve(order: np.ndarray, fractions: dict[str, float]) -> dict[str, np.ndarray]:
    """Consecutive pieces of ``order``, one per split, sized by ``fractions`` (the last takes the rest)."""
    names = list(fractions)
    out: dict[str, np.ndarray] = {}
    start = 0
    for i, name in enumerate(names):
        stop = len(order) if i == len(names) - 1 else start + int(round(fractions[name] * len(order)))
        out[name] = order[start:stop]
        start = stop
    return out


def split_sizes(spec: str = "digits") -> dict[str, int]:
    """Images per split of ``spec`` (``calib`` included).

    Raises:
        DataError: as :func:`get_dataset`.
    """
    return {split: len(get_dataset(spec, split, image_size=8 if spec == "digits" else 32)) for split in SPLITS}


@functools.lru_cache(maxsize=1)
def _digits_norm() -> tuple[float, float]:
    """Mean and standard deviation of the training pixels (on the [0, 1] scale)."""
    images, _, index = _digits_arrays()
    train = images[index["train"]].astype(np.float64)
    return float(train.mean()), float(train.std())


class DigitsDataset(Dataset):
    """One split of scikit-learn's digits as normalized ``(C, S, S)`` float tensors.

    Every image is prepared once in ``__init__`` (the whole data set is 1,797
    images), so indexing is a tensor slice.

    Args:
        split: one of :data:`SPLITS`.
        image_size: side of the upsampled images in pixels; ``None`` means
            :data:`DIGITS_IMAGE_SIZE`.  8 keeps the original resolution.
        channels: 1 (grey) or 3 (the grey plane repeated, for models built for RGB).

    Raises:
        DataError: unknown split, or an image size / channel count that cannot be served.
    """

    num_classes: Final[int] = 10

    def __init__(self, split: str = "test", image_size: int | None = None, channels: int = 1) -> None:
        _check_split(split)
        size = DIGITS_IMAGE_SIZE if image_size is None else int(image_size)
        if size < 8:
            raise DataError(f"digits images are 8x8; image_size must be >= 8, got {image_size}")
        if channels not in (1, 3):
            raise DataError(f"digits images have 1 or 3 channels, got channels={channels}")
        images, labels, index = _digits_arrays()
        idx = index[split]
        x = torch.from_numpy(images[idx]).unsqueeze(1)  # N, 1, 8, 8
        if size != 8:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)  # N, 1, S, S
        mean, std = _digits_norm()
        x = (x - mean) / std
        if channels == 3:
            x = x.expand(-1, 3, -1, -1)
        self.split = split
        self.image_size = size
        self.channels = channels
        self.images = x.contiguous()
        self.targets = torch.from_numpy(labels[idx]).clone()

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.targets[i])

    def __repr__(self) -> str:
        return f"DigitsDataset(split={self.split!r}, n={len(self)}, image_size={self.image_size}, channels={self.channels})"


# ------------------------------------------------------------------------ image folder


_FOLDER_SPLITS: Final[tuple[str, ...]] = ("train", "val", "search", "test")
#: How splits without a sub-folder are carved (folder -> fractions), by which folders exist.
_CARVE_FLAT: Final[dict[str, float]] = {"train": 0.6, "val": 0.1, "search": 0.15, "test": 0.15}
_CARVE_VAL_NO_TEST: Final[dict[str, float]] = {"val": 0.2, "search": 0.4, "test": 0.4}
_CARVE_VAL_WITH_TEST: Final[dict[str, float]] = {"val": 0.5, "search": 0.5}
_announced: set[tuple[str, str]] = set()


def _imagefolder_plan(path: Path, split: str) -> tuple[Path, dict[str, float] | None, str]:
    """The folder ``split`` reads under ``path``, the fractions when it is carved, and the piece it takes.

    Never lets two splits read the same images: a split without its own sub-folder
    takes a seeded piece of a folder whose other pieces go to the other splits.
    """
    has = {name: (path / name).is_dir() for name in (*_FOLDER_SPLITS, "calib")}
    if split == "calib":
        if has["calib"]:
            return path / "calib", None, split
        split = "train"
    if not any(has[name] for name in _FOLDER_SPLITS):
        return path, _CARVE_FLAT, split
    if has[split]:
        if split == "val" and not has["search"]:
            return path / "val", _CARVE_VAL_WITH_TEST if has["test"] else _CARVE_VAL_NO_TEST, split
        return path / split, None, split
    if split in ("search", "test") and has["val"] and not has["search"]:
        fractions = _CARVE_VAL_WITH_TEST if has["test"] else _CARVE_VAL_NO_TEST
        if split in fractions:
            return path / "val", fractions, split
    raise DataError(
        f"image folder {str(path)!r} has split sub-folders ({', '.join(n + '/' for n in _FOLDER_SPLITS if has[n])}) "
        f"but none that split {split!r} can read without sharing images with another split; add {split}/"
    )


def _load_image(path: str):
    """Open one image as RGB, or say which file is unreadable (instead of a PIL traceback mid-epoch)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            image = Image.open(f)
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc}); remove or replace it") from None


def load_checkpoint(path: str | Path, *, map_location: Any = "cpu", weights_only: bool = True) -> Any:
    """``torch.load`` of a checkpoint, with a truncated or foreign file reported as one line.

    Raises:
        DataError: the file is missing, truncated, or not a torch checkpoint.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except FileNotFoundError:
        raise DataError(f"checkpoint {str(path)!r} does not exist") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, KeyError, pickle.UnpicklingError) as exc:
        raise DataError(f"checkpoint {str(path)!r} is unreadable (truncated or not a torch checkpoint: "
                        f"{type(exc).__name__}: {str(exc)[:120]}); delete it to start over") from None


def _carved_indices(root: Path, n_images: int, fractions: dict[str, float], split: str) -> np.ndarray:
    """The seeded piece of ``root``'s images that ``split`` reads; printed once per folder."""
    order = np.random.default_rng(IMAGEFOLDER_SPLIT_SEED).permutation(n_images)
    pieces = _carve(order, fractions)
    key = (str(root), ",".join(fractions))
    if key not in _announced:
        _announced.add(key)
        sizes = ", ".join(f"{name} {len(idx)}" for name, idx in pieces.items())
        print(f"axhw.data: {root} has no sub-folder for every split; seeded split (seed {IMAGEFOLDER_SPLIT_SEED}) "
              f"of its {n_images} images: {sizes}", file=sys.stderr)
    return np.sort(pieces[split])


def _imagefolder(path: Path, split: str, image_size: int | None, channels: int) -> Dataset:
    from torchvision import datasets, transforms

    root, fractions, piece = _imagefolder_plan(path, split)
    size = 224 if image_size is None else int(image_size)
    steps = []
    if channels == 1:
        steps.append(transforms.Grayscale(num_output_channels=1))
    steps += [
        transforms.Resize(int(round(size / 0.875))),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
    ]
    if channels == 1:
        steps.append(transforms.Normalize((0.5,), (0.5,)))
    else:
        steps.append(transforms.Normalize(_IMAGENET_MEAN, _IMAGENET_STD))
    try:
        dataset = datasets.ImageFolder(str(root), transform=transforms.Compose(steps), loader=_load_image)
    except (FileNotFoundError, RuntimeError) as exc:  # no class folders / no images
        raise DataError(
            f"cannot read image folder {str(root)!r}: {exc}; it must hold one sub-folder per class "
            f"with images ({', '.join(_IMAGE_EXTENSIONS)})"
        ) from exc
    if fractions is None:
        return dataset
    return Subset(dataset, _carved_indices(root, len(dataset), fractions, piece).tolist())


def _imagefolder_classes(path: Path) -> list[str]:
    root = path / "train" if (path / "train").is_dir() else path
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"image folder {str(root)!r} has no class sub-folders")
    return classes


# ----------------------------------------------------------------------------- public


def get_dataset(spec: str = "digits", split: str = "test", image_size: int | None = None, channels: int | None = None) -> Dataset:
    """The data set named by ``spec`` for one split.

    Args:
        spec: ``"digits"`` or ``"imagefolder:PATH"`` (see the module docstring).
        split: one of ``train``, ``val``, ``search``, ``test``, ``calib``.
        image_size: side of the square images in pixels; ``None`` means the source's
            default (:data:`DIGITS_IMAGE_SIZE` for digits, 224 for image folders).
        channels: 1 or 3; ``None`` means the source's own (1 for digits, 3 for image folders).

    Returns:
        A map-style data set of ``(image: float tensor (C, S, S), label: int)``.

    Raises:
        DataError: unknown spec or split, or a missing or empty image folder.
    """
    kind, path = parse_spec(spec)
    _check_split(split)
    if kind == "digits":
        return DigitsDataset(split, image_size=image_size, channels=1 if channels is None else channels)
    assert path is not None
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    return _imagefolder(path, split, image_size, 3 if channels is None else channels)


def get_loader(
    spec: str = "digits",
    split: str = "test",
    batch_size: int = 64,
    shuffle: bool = False,
    image_size: int | None = None,
    limit: int | None = None,
    *,
    channels: int | None = None,
    seed: int = 0,
    num_workers: int = 0,
) -> DataLoader:
    """A :class:`~torch.utils.data.DataLoader` over :func:`get_dataset`.

    Args:
        spec, split, image_size, channels: as for :func:`get_dataset`.
        batch_size: images per batch.
        shuffle: reshuffle every epoch, from a generator seeded with ``seed``.
        limit: use only the first ``limit`` images of the split (``None``: all).
        seed: seed of the shuffling generator (ignored when ``shuffle`` is false).
        num_workers: loader worker processes (0 loads in the calling process).

    Raises:
        DataError: as :func:`get_dataset`, or a non-positive ``batch_size`` / ``limit``.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    dataset = get_dataset(spec, split, image_size=image_size, channels=channels)
    if limit is not None:
        if limit < 1:
            raise DataError(f"limit must be >= 1 image, got {limit}")
        dataset = Subset(dataset, range(min(int(limit), len(dataset))))
    generator = torch.Generator().manual_seed(int(seed)) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=num_workers)


def num_classes(spec: str = "digits") -> int:
    """Number of classes of the data named by ``spec``.

    Raises:
        DataError: unknown spec, or an image folder with no class sub-folders.
    """
    kind, path = parse_spec(spec)
    if kind == "digits":
        return DigitsDataset.num_classes
    assert path is not None
    return len(_imagefolder_classes(path))


# ----------------------------------------------------------------------------- export


def export_digits(out: str | Path, per_class: int | None = None, splits: tuple[str, ...] = ("train", "val", "test")) -> dict[str, int]:
    """Write the digits splits as an ImageFolder tree ``out/<split>/<label>/<index>.png``.

    The images are the original 8x8 grey pixels (0..255), so ``imagefolder:out``
    reads the same images, split for split, as ``digits`` does, through the image
    folder path a real data set takes (resize, crop, normalize).  A tree to try
    ``--data imagefolder:PATH`` and ``--model``/``--weights`` on without a download.

    Args:
        out: folder to write; existing files of the same names are overwritten.
        per_class: at most this many images per class and split (``None``: all).
        splits: which splits to write (any of ``train``, ``val``, ``search``, ``test``).

    Returns:
        Images written per split.

    Raises:
        DataError: an unknown split or a non-positive ``per_class``.
    """
    from PIL import Image

    if per_class is not None and per_class < 1:
        raise DataError(f"per_class must be >= 1 image, got {per_class}")
    for split in splits:
        if split not in _FOLDER_SPLITS:
            raise DataError(f"an image folder has no split {split!r}; choose from {', '.join(_FOLDER_SPLITS)}")
    images, labels, index = _digits_arrays()
    written: dict[str, int] = {}
    for split in splits:
        taken: dict[int, int] = {}
        for i in index[split]:
            label = int(labels[i])
            if per_class is not None and taken.get(label, 0) >= per_class:
                continue
            taken[label] = taken.get(label, 0) + 1
            folder = Path(out) / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.round(images[i] * 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{int(i)}.png")
        written[split] = sum(taken.values())
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m axhw.data export OUT [--per-class N]``: the digits as an image folder."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m axhw.data", description="Write the digits data set as an ImageFolder tree.")
    sub = parser.add_subparsers(dest="action", required=True)
    export = sub.add_parser("export", help="write OUT/<split>/<label>/<index>.png")
    export.add_argument("out", help="folder to write")
    export.add_argument("--per-class", type=int, default=None, metavar="N", help="at most N images per class and split (default: all)")
    export.add_argument("--splits", default="train,val,test", help="comma-separated splits (default: train,val,test)")
    args = parser.parse_args(argv)
    try:
        written = export_digits(args.out, args.per_class, tuple(s for s in args.splits.split(",") if s))
    except DataError as exc:
        print(f"python -m axhw.data: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(f'{n} {split}' for split, n in written.items())} images to {args.out}/<split>/<label>/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
