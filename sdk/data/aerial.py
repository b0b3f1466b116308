"""aerial: synthetic DAC-SDC-like drone scenes, generated on demand and deterministic by seed.

Each image is a 640x360 camera frame, rendered directly at the working resolution
`input_size` (all geometry and textures are defined in frame coordinates, so this equals
rendering at 640x360 and resizing, without the cost). Exactly one object per image; its box
is the tight box of the drawn object, normalized to 0..1.

Statistics (frame pixels; see docs/data.md for the full table):

- 12 classes, frequency / median aspect (width / height): person 16% / 0.4, car 14% / 1.8,
  boat 12% / 2.5, group 10% / 1.3, rider 9% / 0.5, building 7% / 1.2, truck 6% / 2.2,
  bike 6% / 1.5, drone 5% / 1.0, paraglider 5% / 1.6, wakeboard 5% / 0.6, whale 5% / 2.8.
  Per-instance aspect jitter: log-normal, sigma 0.15.
- Object area / frame area: log-normal, median 1%, sigma 1.0 (in ln), clipped to
  0.01%..30%; a box that would exceed 95% of the frame width or height is shrunk to fit
  (only very large tall or wide objects). Position uniform over the frame.
- Backgrounds road, grass, water, urban (roofs and streets), sand: value noise at several
  scales, lane stripes, waves, ripples, roof tiles. With probability 0.7 the primary
  background is one the class usually appears on (cars on roads, boats on water...), else
  uniform; with probability 0.5 a second background covers a band or half-plane.
- Clutter: 2..9 distractor blobs (ellipses, rectangles, capsules; 0.02%..3% of the frame),
  coloured from the local background, shifted and desaturated, some translucent (shadows).
- Object: class-specific shape from primitives, colours from class palettes with
  per-instance jitter, linear light gradient and dome shading; mirrored with probability 0.5.
- Camera: contrast 0.7..1.25, brightness 0.65..1.35, colour cast x exp(N(0, 0.04)) per
  channel, gamma exp(N(0, 0.15)), Gaussian blur sigma 0.3..1.8 frame px with
  probability 0.5, sensor noise sigma 1..6 levels.

Determinism: image i of a split depends only on (seed, split, i); train and val come from
independent streams, so changing n_train does not change val.

The generator's difficulty must not be lowered to raise scores: a score on `aerial` is only
meaningful against the statistics stated here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ajpq.data.aerial_objects import OBJECT_CLASSES, draw_object
from ajpq.data.aerial_textures import (
    BACKGROUNDS,
    FRAME_HEIGHT,
    FRAME_WIDTH,
    Camera,
    add_clutter,
    apply_camera,
    render_background,
)
from ajpq.data.dataset import Dataset
from ajpq.errors import InvalidData

CLASS_NAMES: tuple[str, ...] = tuple(object_class.name for object_class in OBJECT_CLASSES)
CLASS_FREQUENCIES = np.array([object_class.frequency for object_class in OBJECT_CLASSES])
SPLITS = {"train": 0, "val": 1}
AREA_MEDIAN, AREA_SIGMA, AREA_MIN, AREA_MAX = 0.01, 1.0, 1e-4, 0.3
ASPECT_SIGMA = 0.15
MAX_EXTENT = 0.95
CONTEXT_PROBABILITY = 0.7
SECOND_BACKGROUND_PROBABILITY = 0.5
_STREAM_TAG = 0xAE12A1


@dataclass(frozen=True)
class Scene:
    """Everything that decides one image except the texture detail: class, normalized box,
    frame-pixel aspect, mirroring, backgrounds, camera, and the seed of the render streams."""

    label: int
    box: tuple[float, float, float, float]
    aspect: float
    flip: bool
    background: str
    second_background: str | None
    camera: Camera
    render_seed: int


def sample_scene(seed: int, split: str, index: int) -> Scene:
    """The scene of image `index` of `split` ("train" or "val") for `seed`. `aerial` renders
    exactly these scenes, so this is also the cheap box-only sampler."""
    rng = np.random.default_rng([_STREAM_TAG, seed, SPLITS[split], index])
    label = int(rng.choice(len(OBJECT_CLASSES), p=CLASS_FREQUENCIES))
    box, aspect = _sample_box(rng, OBJECT_CLASSES[label].aspect)
    preferred = OBJECT_CLASSES[label].backgrounds
    if rng.random() < CONTEXT_PROBABILITY:
        background = preferred[int(rng.integers(len(preferred)))]
    else:
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    second = None
    if rng.random() < SECOND_BACKGROUND_PROBABILITY:
        others = [name for name in BACKGROUNDS if name != background]
        second = others[int(rng.integers(len(others)))]
    return Scene(
        label=label,
        box=box,
        aspect=aspect,
        flip=bool(rng.random() < 0.5),
        background=background,
        second_background=second,
        camera=_sample_camera(rng),
        render_seed=int(rng.integers(2**63)),
    )


def _sample_box(
    rng: np.random.Generator, median_aspect: float
) -> tuple[tuple[float, float, float, float], float]:
    area = math.exp(rng.normal(math.log(AREA_MEDIAN), AREA_SIGMA))
    area = min(max(area, AREA_MIN), AREA_MAX) * FRAME_WIDTH * FRAME_HEIGHT
    aspect = median_aspect * math.exp(rng.normal(0.0, ASPECT_SIGMA))
    height = math.sqrt(area / aspect)
    width = aspect * height
    shrink = min(1.0, MAX_EXTENT * FRAME_WIDTH / width, MAX_EXTENT * FRAME_HEIGHT / height)
    width, height = width * shrink, height * shrink
    x0 = rng.uniform(0.0, FRAME_WIDTH - width)
    y0 = rng.uniform(0.0, FRAME_HEIGHT - height)
    box = (
        x0 / FRAME_WIDTH,
        y0 / FRAME_HEIGHT,
        (x0 + width) / FRAME_WIDTH,
        (y0 + height) / FRAME_HEIGHT,
    )
    return box, aspect


def _sample_camera(rng: np.random.Generator) -> Camera:
    cast = np.exp(rng.normal(0.0, 0.04, 3))
    return Camera(
        brightness=float(rng.uniform(0.65, 1.35)),
        contrast=float(rng.uniform(0.7, 1.25)),
        colour_cast=(float(cast[0]), float(cast[1]), float(cast[2])),
        gamma=float(math.exp(rng.normal(0.0, 0.15))),
        blur_sigma=float(rng.uniform(0.3, 1.8)) if rng.random() < 0.5 else 0.0,
        noise_sigma=float(rng.uniform(1.0, 6.0)),
    )


def render_scene(scene: Scene, size: tuple[int, int], draw_object_too: bool = True) -> np.ndarray:
    """(3, H, W) uint8 image of `scene` at `size` (H, W). With draw_object_too=False the
    same scene without its object (for checking that the box covers what was drawn)."""
    background_rng, object_rng, noise_rng = (
        np.random.default_rng([scene.render_seed, stream]) for stream in range(3)
    )
    canvas = render_background(background_rng, scene.background, scene.second_background, size)
    add_clutter(canvas, background_rng)
    if draw_object_too:
        height, width = size
        x0, y0, x1, y1 = scene.box
        pixel_box = (x0 * width, y0 * height, x1 * width, y1 * height)
        draw_object(canvas, scene.label, pixel_box, scene.aspect, scene.flip, object_rng)
    return apply_camera(canvas, scene.camera, noise_rng)


def sample_boxes(count: int, seed: int = 0, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Boxes float32 (count, 4) and labels int64 (count,) of the first `count` images of a
    split, without rendering them (same scenes as `aerial`)."""
    scenes = [sample_scene(seed, split, index) for index in range(count)]
    boxes = np.array([scene.box for scene in scenes], dtype=np.float32).reshape(count, 4)
    labels = np.array([scene.label for scene in scenes], dtype=np.int64)
    return boxes, labels


def render_split(count: int, split: str, input_size: tuple[int, int], seed: int) -> Dataset:
    """The first `count` images of `split` as a Dataset."""
    height, width = input_size
    images = np.empty((count, 3, height, width), dtype=np.uint8)
    boxes = np.empty((count, 4), dtype=np.float32)
    labels = np.empty(count, dtype=np.int64)
    for index in range(count):
        scene = sample_scene(seed, split, index)
        images[index] = render_scene(scene, (height, width))
        boxes[index] = scene.box
        labels[index] = scene.label
    return Dataset(images=images, boxes=boxes, labels=labels, class_names=CLASS_NAMES)


def aerial(
    n_train: int, n_val: int, input_size: tuple[int, int] = (160, 320), seed: int = 0
) -> tuple[Dataset, Dataset]:
    """Train and val Datasets of synthetic aerial scenes (see the module docstring)."""
    for name, value in (("n_train", n_train), ("n_val", n_val), ("seed", seed)):
        if int(value) != value or value < 0:
            raise InvalidData(f"aerial: {name} must be a non-negative integer; got {value!r}.")
    if len(input_size) != 2 or min(input_size) < 8:
        raise InvalidData(
            f"aerial: input_size must be (height, width) of at least 8 pixels; got {input_size!r}."
        )
    size = (int(input_size[0]), int(input_size[1]))
    train = render_split(int(n_train), "train", size, int(seed))
    val = render_split(int(n_val), "val", size, int(seed))
    return train, val
