"""Omniglot (Lake et al. 2015) from a local folder in its standard layout:

    ROOT/images_background/<alphabet>/<character>/*.png    (30 alphabets, 964 characters)
    ROOT/images_evaluation/<alphabet>/<character>/*.png    (20 alphabets, 659 characters)

20 drawings of each character. `images_background` is the meta-train split and
`images_evaluation` the meta-test split (Lake et al.'s own split; Finn et al. 2017 instead take
1,200 characters of the union for training). Images are resized to 28×28 with a Lanczos filter
and inverted so that strokes are 1 and paper 0. With `rotations`, each character rotated by
90°, 180° and 270° becomes a new class (the augmentation of Santoro et al. 2016 used by
MAML), in both splits.

Nothing is downloaded: a missing folder is a `DatasetNotFoundError` saying where to put it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .episodes import ClassPool
from .errors import DataError, DatasetNotFoundError

SPLIT_FOLDERS = {"train": "images_background", "test": "images_evaluation"}
IMAGE_SIZE = 28
ROTATIONS = (0, 90, 180, 270)


def load_split(root: str | Path | None, split: str, *, image_size: int = IMAGE_SIZE,
               rotations: bool = False) -> ClassPool:
    from PIL import Image

    if split not in SPLIT_FOLDERS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLIT_FOLDERS)}")
    folder = _split_folder(root, split)
    characters = sorted(c for a in sorted(folder.iterdir()) if a.is_dir()
                        for c in a.iterdir() if c.is_dir())
    images, names = [], []
    for character in characters:
        files = sorted(character.glob("*.png"))
        if not files:
            continue
        stack = np.stack([_read(Image, f, image_size) for f in files])
        base = torch.from_numpy(stack).unsqueeze(1)
        name = f"{character.parent.name}/{character.name}"
        for degrees in ROTATIONS if rotations else (0,):
            images.append(torch.rot90(base, k=degrees // 90, dims=(2, 3)).contiguous())
            names.append(name if degrees == 0 else f"{name}@rot{degrees}")
    if not images:
        raise DatasetNotFoundError(f"{folder} holds no <alphabet>/<character>/*.png images; "
                                   f"{_where_to_put(folder.parent)}")
    return ClassPool(name=f"omniglot/{split}", images=tuple(images), class_names=tuple(names))


def _split_folder(root: str | Path | None, split: str) -> Path:
    if root is None:
        raise DatasetNotFoundError("Omniglot needs --data-dir ROOT; " + _where_to_put(Path("ROOT")))
    folder = Path(root) / SPLIT_FOLDERS[split]
    if not folder.is_dir():
        raise DatasetNotFoundError(f"Omniglot not found: {folder} is not a folder; "
                                   f"{_where_to_put(Path(root))}")
    return folder


def _where_to_put(root: Path) -> str:
    return (f"unpack images_background.zip and images_evaluation.zip of the Omniglot dataset "
            f"into {root}/ so that {root}/images_background/<alphabet>/<character>/*.png exists")


def _read(image_module, path: Path, size: int) -> np.ndarray:
    try:
        with image_module.open(path) as img:
            gray = img.convert("L").resize((size, size), resample=image_module.Resampling.LANCZOS)
    except OSError as e:
        raise DataError(f"{path}: not a readable PNG image ({e})") from None
    # Omniglot strokes are black on white; invert so that ink is 1 and paper 0.
    return 1.0 - np.asarray(gray, dtype=np.float32) / 255.0
