"""Episodes from scikit-learn's bundled handwritten digits (`sklearn.datasets.load_digits`:
1,797 real 8×8 images of the digits 0–9, about 180 per class, shipped inside the package).

Class split. Meta-train and meta-test classes must be disjoint, and 5-way evaluation (the
standard few-shot setting) needs at least five meta-test classes, so the ten digits are split
five and five: 0–4 for meta-training, 5–9 for meta-testing. There is no separate validation
split; ten classes leave no room for one.

Pixels are scaled from 0..16 to [0, 1] and upsampled bilinearly to `image_size` (default 28),
so the Conv4 backbones built for 28×28×1 inputs (four 2×2 max-pools) can read them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .episodes import ClassPool

TRAIN_CLASSES = (0, 1, 2, 3, 4)
TEST_CLASSES = (5, 6, 7, 8, 9)
SPLITS = {"train": TRAIN_CLASSES, "test": TEST_CLASSES}
DEFAULT_IMAGE_SIZE = 28
_MAX_PIXEL = 16.0  # load_digits pixels are integers 0..16


def load_split(split: str, image_size: int = DEFAULT_IMAGE_SIZE) -> ClassPool:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / _MAX_PIXEL
    if image_size != images.shape[-1]:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear",
                               align_corners=False)
    labels = torch.as_tensor(bunch.target)
    classes = SPLITS[split]
    return ClassPool(name=f"digits/{split}",
                     images=tuple(images[labels == c].contiguous() for c in classes),
                     class_names=tuple(str(c) for c in classes))
