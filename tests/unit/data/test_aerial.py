"""The synthetic aerial generator and the Dataset container."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ajpq.data import CLASS_NAMES, Dataset, aerial
from ajpq.data.aerial import render_scene, sample_boxes, sample_scene
from ajpq.errors import InvalidData

FRAME_WIDTH, FRAME_HEIGHT = 640, 360


@pytest.fixture(scope="module")
def small() -> tuple[Dataset, Dataset]:
    return aerial(6, 4, input_size=(160, 320), seed=3)


@pytest.fixture(scope="module")
def many_boxes() -> tuple[np.ndarray, np.ndarray]:
    return sample_boxes(2000, seed=0, split="train")


def test_same_seed_gives_identical_arrays(small: tuple[Dataset, Dataset]) -> None:
    again = aerial(6, 4, input_size=(160, 320), seed=3)
    for first, second in zip(small, again, strict=True):
        assert np.array_equal(first.images, second.images)
        assert np.array_equal(first.boxes, second.boxes)
        assert np.array_equal(first.labels, second.labels)


def test_different_seed_gives_different_arrays(small: tuple[Dataset, Dataset]) -> None:
    other_train, other_val = aerial(6, 4, input_size=(160, 320), seed=4)
    assert not np.array_equal(small[0].images, other_train.images)
    assert not np.array_equal(small[1].boxes, other_val.boxes)


def test_val_does_not_depend_on_n_train(small: tuple[Dataset, Dataset]) -> None:
    train, val = aerial(2, 4, input_size=(160, 320), seed=3)
    assert np.array_equal(val.images, small[1].images)
    assert np.array_equal(val.boxes, small[1].boxes)
    assert np.array_equal(train.images, small[0].images[:2])
    assert not np.array_equal(small[0].images[:4], small[1].images)


def test_shapes_and_dtypes(small: tuple[Dataset, Dataset]) -> None:
    train, val = small
    assert train.images.shape == (6, 3, 160, 320) and train.images.dtype == np.uint8
    assert train.boxes.shape == (6, 4) and train.boxes.dtype == np.float32
    assert train.labels.shape == (6,) and train.labels.dtype == np.int64
    assert len(val) == 4 and val.input_size == (160, 320)
    assert train.class_names == CLASS_NAMES and len(CLASS_NAMES) == 12
    other, _ = aerial(1, 0, input_size=(64, 128))
    assert other.images.shape == (1, 3, 64, 128)


def test_boxes_are_valid_and_match_rendered_datasets(
    many_boxes: tuple[np.ndarray, np.ndarray], small: tuple[Dataset, Dataset]
) -> None:
    boxes, labels = many_boxes
    assert boxes.shape == (2000, 4) and labels.shape == (2000,)
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    sampled, sampled_labels = sample_boxes(6, seed=3, split="train")
    assert np.array_equal(sampled, small[0].boxes)
    assert np.array_equal(sampled_labels, small[0].labels)


def test_box_is_the_tight_box_of_the_drawn_object() -> None:
    height, width = 160, 320
    for index in range(40):
        scene = sample_scene(0, "val", index)
        scene = dataclasses.replace(scene, camera=dataclasses.replace(scene.camera, blur_sigma=0.0))
        changed = np.any(
            render_scene(scene, (height, width)) != render_scene(scene, (height, width), False),
            axis=0,
        )
        rows, cols = np.nonzero(changed)
        x0, y0, x1, y1 = scene.box
        first_col, last_col = math.floor(x0 * width), math.ceil(x1 * width) - 1
        first_row, last_row = math.floor(y0 * height), math.ceil(y1 * height) - 1
        assert cols.min() >= first_col and cols.max() <= last_col, index
        assert rows.min() >= first_row and rows.max() <= last_row, index
        assert cols.min() <= first_col + 1 and cols.max() >= last_col - 1, index
        assert rows.min() <= first_row + 1 and rows.max() >= last_row - 1, index


def test_class_aspect_ratios(many_boxes: tuple[np.ndarray, np.ndarray]) -> None:
    boxes, labels = many_boxes
    aspect = (
        (boxes[:, 2] - boxes[:, 0]) * FRAME_WIDTH / ((boxes[:, 3] - boxes[:, 1]) * FRAME_HEIGHT)
    )
    person, car, whale = (CLASS_NAMES.index(name) for name in ("person", "car", "whale"))
    assert (labels == person).sum() >= 250 and (labels == car).sum() >= 200
    person_median = float(np.median(aspect[labels == person]))
    car_median = float(np.median(aspect[labels == car]))
    assert person_median < car_median < float(np.median(aspect[labels == whale]))
    assert 0.36 <= person_median <= 0.44 and 1.6 <= car_median <= 2.0


def test_area_distribution(many_boxes: tuple[np.ndarray, np.ndarray]) -> None:
    boxes, _ = many_boxes
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert 0.006 <= float(np.median(area)) <= 0.016
    assert float(area.min()) >= 1e-4 * 0.999 and float(area.max()) <= 0.3 * 1.001


def test_class_frequencies(many_boxes: tuple[np.ndarray, np.ndarray]) -> None:
    _, labels = many_boxes
    counts = np.bincount(labels, minlength=12)
    assert counts.min() > 50 and counts[CLASS_NAMES.index("person")] == counts.max()


def test_bad_arguments_raise_invalid_data() -> None:
    with pytest.raises(InvalidData):
        aerial(-1, 2)
    with pytest.raises(InvalidData):
        aerial(1, 1, input_size=(4, 4))


def test_dataset_save_load_round_trip(small: tuple[Dataset, Dataset], tmp_path: Path) -> None:
    train = small[0]
    path = train.save(tmp_path / "cache" / "train.npz")
    loaded = Dataset.load(path)
    assert np.array_equal(loaded.images, train.images)
    assert np.array_equal(loaded.boxes, train.boxes) and loaded.boxes.dtype == np.float32
    assert np.array_equal(loaded.labels, train.labels)
    assert loaded.class_names == train.class_names
    with pytest.raises(InvalidData):
        Dataset.load(tmp_path / "missing.npz")


def test_dataset_item_subset_and_batches(small: tuple[Dataset, Dataset]) -> None:
    train = small[0]
    image, box = train[2]
    assert image.dtype == torch.float32 and image.shape == (3, 160, 320)
    assert torch.equal(image, torch.from_numpy(train.images[2]).float())
    assert torch.equal(box, torch.from_numpy(train.boxes[2]))
    part = train.subset([4, 1])
    assert np.array_equal(part.images, train.images[[4, 1]]) and len(part) == 2
    batches = list(train.batches(4, shuffle=True, seed=1))
    assert [tuple(images.shape) for images, _ in batches] == [(4, 3, 160, 320), (2, 3, 160, 320)]
    assert [tuple(boxes.shape) for _, boxes in batches] == [(4, 4), (2, 4)]
    assert batches[0][0].dtype == torch.float32 and float(batches[0][0].max()) <= 255.0
    order = np.random.default_rng(1).permutation(6)
    assert torch.equal(batches[0][1], torch.from_numpy(train.boxes[order[:4]]))


def test_dataset_rejects_bad_arrays() -> None:
    images = np.zeros((2, 3, 8, 8), dtype=np.uint8)
    boxes = np.array([[0.1, 0.1, 0.5, 0.5]] * 2, dtype=np.float32)
    labels = np.zeros(2, dtype=np.int64)
    Dataset(images, boxes, labels, ("a",))
    with pytest.raises(InvalidData):
        Dataset(images.astype(np.float32), boxes, labels, ("a",))
    with pytest.raises(InvalidData):
        Dataset(images, boxes[:1], labels, ("a",))
    with pytest.raises(InvalidData):
        Dataset(images, boxes * 3, labels, ("a",))
    with pytest.raises(InvalidData):
        Dataset(images, boxes, labels + 1, ("a",))
