"""Tasks and data: episode shapes, labels and class splits; seeded determinism; the digits
split; the Omniglot loader on a small fixture in the standard layout; missing-data errors."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from algorithms.data import (ClassPool, DataError, DatasetNotFoundError, Episodes, digits,
                             episode_generator, episode_seed, omniglot, task_sources)


def numbered_pool(classes=7, per_class=9):
    """Each image is filled with a unique number 1000·class + index, so an episode's images
    can be traced back to their class and position."""
    images = tuple(torch.tensor([1000.0 * c + i for i in range(per_class)]).view(-1, 1, 1, 1)
                   .expand(-1, 1, 2, 2).clone() for c in range(classes))
    return ClassPool("numbered", images, tuple(f"c{c}" for c in range(classes)))


def test_episode_shapes_and_class_major_labels():
    batch = Episodes(numbered_pool(), way=5, shot=2, query=3).sample(4, torch.Generator().manual_seed(0))
    assert batch.xs.shape == (4, 10, 1, 2, 2) and batch.xq.shape == (4, 15, 1, 2, 2)
    assert batch.ys.dtype == torch.int64
    assert batch.ys[0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert batch.yq[0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]


def test_episode_labels_name_one_class_and_support_query_are_disjoint():
    batch = Episodes(numbered_pool(), way=5, shot=2, query=3).sample(20, torch.Generator().manual_seed(1))
    for j in range(20):
        ids_s = batch.xs[j, :, 0, 0, 0].long()
        ids_q = batch.xq[j, :, 0, 0, 0].long()
        assert not set(ids_s.tolist()) & set(ids_q.tolist())          # no image in both
        assert len(set(ids_s.tolist())) == 10 and len(set(ids_q.tolist())) == 15
        classes = {}
        for ids, labels in ((ids_s, batch.ys[j]), (ids_q, batch.yq[j])):
            for i, y in zip(ids.tolist(), labels.tolist()):
                classes.setdefault(y, set()).add(i // 1000)
        assert all(len(c) == 1 for c in classes.values())               # one class per label
        assert len(set().union(*classes.values())) == 5                 # five distinct classes


def test_episodes_are_deterministic_per_seed():
    src = Episodes(numbered_pool(), way=3, shot=1, query=2)
    a = src.sample(3, episode_generator(5, "train", 7))
    b = src.sample(3, episode_generator(5, "train", 7))
    c = src.sample(3, episode_generator(5, "train", 8))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.xs, c.xs)


def test_episode_seeds_differ_by_seed_stream_and_index():
    seeds = {episode_seed(s, stream, i) for s in (0, 1) for stream in ("train", "test") for i in (0, 1)}
    assert len(seeds) == 8
    assert episode_seed(3, "test", 11) == episode_seed(3, "test", 11) < 2 ** 63


@pytest.mark.parametrize("way, shot, query, fragment", [
    (8, 1, 1, "8-way needs 8 classes"),
    (2, 5, 5, r"shot \+ query = 10 images per class, but numbered has only 9"),
    (2, 0, 1, "shot must be >= 1"),
    (0, 1, 1, "way must be >= 1")])
def test_impossible_episodes_are_data_errors(way, shot, query, fragment):
    with pytest.raises(DataError, match=fragment):
        Episodes(numbered_pool(), way=way, shot=shot, query=query)


def test_digits_splits_are_disjoint_real_images():
    train, test = digits.load_split("train"), digits.load_split("test")
    assert set(train.class_names).isdisjoint(test.class_names)
    assert train.num_classes == test.num_classes == 5        # 5-way possible on both sides
    assert sum(x.shape[0] for x in train.images + test.images) == 1797
    assert train.image_shape == (1, 28, 28)
    x = torch.cat(train.images)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    small = digits.load_split("test", image_size=8)
    assert small.image_shape == (1, 8, 8)


def test_digits_task_sources_serve_5_way_and_reject_6_way():
    train, test = task_sources("digits", way=5, shot=5, query=15)
    batch = test.sample(2, episode_generator(0, "test", 0))
    assert batch.xs.shape == (2, 25, 1, 28, 28) and batch.yq.shape == (2, 75)
    with pytest.raises(DataError, match="6-way needs 6 classes but digits/train has 5"):
        task_sources("digits", way=6, shot=1, query=1)
    with pytest.raises(DataError, match="shot \\+ query"):
        task_sources("digits", way=5, shot=100, query=100)


def test_sinusoid_source_and_unknown_data():
    train, test = task_sources("sinusoid", way=1, shot=10, query=10, eval_shot=5, eval_query=100)
    batch = test.sample(3, episode_generator(0, "test", 0))
    assert batch.xs.shape == (3, 5, 1) and batch.xq.shape == (3, 100, 1)
    assert train.sample(2, episode_generator(0, "train", 0)).xs.shape == (2, 10, 1)
    with pytest.raises(DataError, match="--way must be 1"):
        task_sources("sinusoid", way=5, shot=1, query=1)
    with pytest.raises(DataError, match="unknown data 'mnist'"):
        task_sources("mnist", way=5, shot=1, query=1)


# ---------------------------------------------------------------- Omniglot fixture


def write_omniglot(root, layout):
    """Omniglot-style PNGs: 105×105 1-bit drawings, black strokes on white, in
    root/<split folder>/<alphabet>/<character>/<id>.png. Character c draws a bar at row 10+c
    (so classes differ and rotations are recognisable)."""
    for folder, alphabets in layout.items():
        for alphabet, characters, drawings in alphabets:
            for c in range(characters):
                d = root / folder / alphabet / f"character{c + 1:02d}"
                d.mkdir(parents=True)
                for k in range(drawings):
                    img = Image.new("1", (105, 105), 1)
                    draw = ImageDraw.Draw(img)
                    top = 4 * (c + 1) + k
                    draw.rectangle([10, top, 90, top + 8], fill=0)
                    img.save(d / f"{c:04d}_{k + 1:02d}.png")


LAYOUT = {"images_background": [("Alpha", 3, 4), ("Beta", 2, 4)],
          "images_evaluation": [("Gamma", 4, 4)]}


def test_omniglot_fixture_loads_in_the_standard_layout(tmp_path):
    write_omniglot(tmp_path, LAYOUT)
    train = omniglot.load_split(tmp_path, "train")
    test = omniglot.load_split(tmp_path, "test")
    assert train.num_classes == 5 and test.num_classes == 4
    assert train.class_names[0] == "Alpha/character01" and train.class_names[-1] == "Beta/character02"
    assert train.image_shape == (1, 28, 28) and train.min_per_class == 4
    img = train.images[0][0, 0]
    assert float(img.max()) > 0.9 and float(img.min()) < 0.05    # ink is 1, paper is 0
    assert float(img[:, 0].max()) < 0.05                          # left margin is paper
    ink_rows = (img > 0.5).any(1).nonzero().flatten()
    assert 0 < ink_rows.min() and ink_rows.max() < 10             # the bar near the top


def test_omniglot_rotations_are_new_classes(tmp_path):
    write_omniglot(tmp_path, LAYOUT)
    plain = omniglot.load_split(tmp_path, "train")
    rotated = omniglot.load_split(tmp_path, "train", rotations=True)
    assert rotated.num_classes == 4 * plain.num_classes
    assert rotated.class_names[:4] == ("Alpha/character01", "Alpha/character01@rot90",
                                       "Alpha/character01@rot180", "Alpha/character01@rot270")
    assert torch.equal(rotated.images[2], torch.flip(plain.images[0], dims=(2, 3)))  # 180°


def test_omniglot_episodes_through_task_sources(tmp_path):
    write_omniglot(tmp_path, LAYOUT)
    train, test = task_sources("omniglot", way=4, shot=1, query=3, data_dir=tmp_path)
    batch = test.sample(2, episode_generator(0, "test", 0))
    assert batch.xs.shape == (2, 4, 1, 28, 28) and batch.xq.shape == (2, 12, 1, 28, 28)
    with pytest.raises(DataError, match="5-way needs 5 classes but omniglot/test has 4"):
        task_sources("omniglot", way=5, shot=1, query=1, data_dir=tmp_path)


def test_missing_omniglot_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        omniglot.load_split(tmp_path / "nowhere", "train")
    msg = str(e.value)
    assert "nowhere/images_background" in msg and "<alphabet>/<character>/*.png" in msg
    assert "\n" not in msg
    with pytest.raises(DatasetNotFoundError, match="--data-dir"):
        task_sources("omniglot", way=5, shot=1, query=1, data_dir=None)
    (tmp_path / "empty" / "images_background").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="holds no"):
        omniglot.load_split(tmp_path / "empty", "train")


def test_unreadable_png_is_a_data_error(tmp_path):
    write_omniglot(tmp_path, {"images_background": [("Alpha", 1, 2)]})
    bad = next((tmp_path / "images_background").rglob("*.png"))
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="not a readable PNG"):
        omniglot.load_split(tmp_path, "train")


def test_loaded_pixels_match_a_direct_resize(tmp_path):
    write_omniglot(tmp_path, {"images_background": [("Alpha", 1, 1)]})
    path = next((tmp_path / "images_background").rglob("*.png"))
    expected = 1 - np.asarray(Image.open(path).convert("L").resize((28, 28), Image.Resampling.LANCZOS),
                              dtype=np.float32) / 255
    got = omniglot.load_split(tmp_path, "train").images[0][0, 0].numpy()
    np.testing.assert_array_equal(got, expected)
