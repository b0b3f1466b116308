"""Backgrounds, clutter and camera effects of the synthetic aerial scenes.

Everything is defined in the coordinates of the 640x360 camera frame and evaluated directly
at the working resolution (the pixel centres mapped back to the frame), so a scene rendered
at 160x320 has the statistics of a 640x360 frame resized to 160x320, at a fraction of the
cost. Noise is value noise: coarse random grids upsampled bicubically by PIL. Images are
channels-first (3, H, W) float32 until the camera turns them into uint8.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ajpq.data.aerial_objects import Part, draw_parts

FRAME_WIDTH, FRAME_HEIGHT = 640, 360
BACKGROUNDS = ("road", "grass", "water", "urban", "sand")
ROOF_COLOURS = ((168, 84, 64), (124, 124, 128), (70, 70, 76), (205, 205, 198), (150, 110, 82))

Size = tuple[int, int]
_BANK_SEED = 0x5EED


@dataclass(frozen=True)
class Camera:
    """Global photometric variation: contrast about mid-grey, brightness, per-channel colour
    cast, gamma, Gaussian blur (sigma in frame pixels) and sensor noise (sigma in levels)."""

    brightness: float
    contrast: float
    colour_cast: tuple[float, float, float]
    gamma: float
    blur_sigma: float
    noise_sigma: float


def frame_coordinates(size: Size) -> tuple[np.ndarray, np.ndarray]:
    """Frame x (1, W) and y (H, 1) of the working pixel centres."""
    height, width = size
    x = (np.arange(width, dtype=np.float32) + 0.5) * np.float32(FRAME_WIDTH / width)
    y = (np.arange(height, dtype=np.float32) + 0.5) * np.float32(FRAME_HEIGHT / height)
    return x[None, :], y[:, None]


@functools.lru_cache(maxsize=4)
def _noise_bank(size: Size, channels: int) -> np.ndarray:
    """Fixed N(0, 1) noise twice the working size; images crop it at random offsets."""
    shape = (channels, 2 * size[0], 2 * size[1])
    return np.random.default_rng(_BANK_SEED).standard_normal(shape, dtype=np.float32)


def pixel_noise(rng: np.random.Generator, size: Size, channels: int = 1) -> np.ndarray:
    """(channels, H, W) float32 N(0, 1) noise, independent per working pixel."""
    row, col = int(rng.integers(size[0])), int(rng.integers(size[1]))
    return _noise_bank(size, channels)[:, row : row + size[0], col : col + size[1]]


def _resize(grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    image = Image.fromarray(grid).resize((shape[1], shape[0]), Image.Resampling.BICUBIC)
    return np.asarray(image)


def _grid_shape(cell: float) -> tuple[int, int]:
    return int(FRAME_HEIGHT / cell) + 2, int(FRAME_WIDTH / cell) + 2


@functools.lru_cache(maxsize=64)
def _smooth_bank(size: Size, cell: float) -> np.ndarray:
    """Fixed unit-variance smooth noise with features `cell` frame px wide, over twice the
    working size (a random grid over twice the frame, upsampled bicubically)."""
    rows, cols = (2 * extent for extent in _grid_shape(cell))
    grid = np.random.default_rng([_BANK_SEED, round(cell * 1000)]).standard_normal(
        (rows, cols), dtype=np.float32
    )
    field = _resize(grid, (2 * size[0], 2 * size[1]))
    return (field / field.std()).astype(np.float32)


def value_noise(
    rng: np.random.Generator, size: Size, cells: tuple[float, ...] = (), cell: float = 0.0
) -> np.ndarray:
    """(H, W) float32 fractal value noise: octaves with features `cells` frame px wide
    (coarse first, each 0.6x the amplitude of the previous), each a random window of a fixed
    noise field, randomly mirrored. Octaves finer than 1.5 working pixels are per-pixel
    noise. `cell` alone gives a single octave."""
    height, width = size
    total = np.zeros(size, dtype=np.float32)
    for octave, feature in enumerate(cells or (cell,)):
        if feature * width / FRAME_WIDTH < 1.5:
            bank = _noise_bank(size, 1)[0]
        else:
            bank = _smooth_bank(size, feature)
        row, col, flips = int(rng.integers(height)), int(rng.integers(width)), rng.random(2)
        window = bank[row : row + height, col : col + width]
        window = window[::-1] if flips[0] < 0.5 else window
        window = window[:, ::-1] if flips[1] < 0.5 else window
        total += window * np.float32(0.6**octave)
    return total


def _colour(rng: np.random.Generator, colour: tuple[int, int, int], spread: float) -> np.ndarray:
    """(3, 1, 1) float32 colour jittered by N(0, spread) per channel."""
    jittered = np.asarray(colour, dtype=np.float32) + rng.normal(0.0, spread, 3)
    return jittered.astype(np.float32)[:, None, None]


def _direction(rng: np.random.Generator, size: Size) -> np.ndarray:
    """Frame distance along a random direction, (H, W)."""
    x, y = frame_coordinates(size)
    angle = rng.uniform(0.0, math.pi)
    return x * np.float32(math.cos(angle)) + y * np.float32(math.sin(angle))


def _sigmoid(value: np.ndarray) -> np.ndarray:
    return np.float32(0.5) + np.float32(0.5) * np.tanh(value * np.float32(0.5))


def _grass(rng: np.random.Generator, size: Size) -> np.ndarray:
    lush = _colour(rng, (72, 112, 46), 14)
    dry = _colour(rng, (146, 134, 84), 14)
    mix = _sigmoid(value_noise(rng, size, cell=110.0) * 2.0 + np.float32(rng.normal(-0.8, 0.8)))
    detail = value_noise(rng, size, (28.0, 8.0, 3.0)) * np.float32(rng.uniform(8.0, 18.0))
    return lush + (dry - lush) * mix + detail


def _road(rng: np.random.Generator, size: Size) -> np.ndarray:
    asphalt = _colour(rng, (88, 88, 92), 3) + np.float32(rng.uniform(-30.0, 30.0))
    lane, line = rng.uniform(40.0, 90.0), rng.uniform(1.5, 3.5)
    distance = _direction(rng, size) * np.float32(1.0 / lane)
    along = _direction(rng, size) * np.float32(0.5 / rng.uniform(10.0, 30.0))
    marks = (distance - np.floor(distance) < line / lane) & (along - np.floor(along) < 0.5)
    paint = _colour(rng, (220, 218, 210) if rng.random() < 0.8 else (214, 180, 60), 8)
    stains = value_noise(rng, size, (60.0, 15.0, 2.0)) * np.float32(8.0)
    image = asphalt + stains
    return np.where(marks, paint * np.float32(rng.uniform(0.7, 1.0)), image)


def _water(rng: np.random.Generator, size: Size) -> np.ndarray:
    tints = ((30, 72, 112), (40, 92, 104), (62, 82, 62), (22, 52, 82), (70, 96, 110))
    base = _colour(rng, tints[int(rng.integers(len(tints)))], 10)
    low = value_noise(rng, size, cell=150.0) * np.float32(12.0)
    phase = value_noise(rng, size, cell=50.0) * np.float32(2.5)
    frequency = np.float32(2 * math.pi / rng.uniform(6.0, 24.0))
    crest = np.float32(0.5) + np.float32(0.5) * np.sin(_direction(rng, size) * frequency + phase)
    crest *= crest * crest
    return base + (low + crest * crest * np.float32(rng.uniform(8.0, 40.0)))


def _edges(rng: np.random.Generator, extent: float, low: float, high: float) -> np.ndarray:
    steps = rng.uniform(low, high, int(extent / low) + 2)
    return np.cumsum(steps) - rng.uniform(0.0, high)


def _urban(rng: np.random.Generator, size: Size) -> np.ndarray:
    """Blocks of roofs (gabled: a lit and a shaded half) separated by dark seams and streets."""
    x, y = frame_coordinates(size)
    x_edges, y_edges = _edges(rng, FRAME_WIDTH, 24.0, 90.0), _edges(rng, FRAME_HEIGHT, 24.0, 90.0)
    col, row = np.searchsorted(x_edges, x[0]), np.searchsorted(y_edges, y[:, 0])
    rows, cols = len(y_edges) + 1, len(x_edges) + 1
    palette = np.asarray(ROOF_COLOURS, dtype=np.float32)
    table = palette[rng.integers(len(palette), size=rows * cols)]
    table += rng.normal(0.0, 12.0, table.shape).astype(np.float32)
    streets = (rng.random(cols) < 0.2)[None, :] | (rng.random(rows) < 0.2)[:, None]
    table[streets.reshape(-1)] = _colour(rng, (84, 84, 88), 6)[:, 0, 0]
    top = np.concatenate([[-1e3], y_edges])[row][:, None]
    bottom = np.concatenate([y_edges, [1e4]])[row][:, None]
    left = np.concatenate([[-1e3], x_edges])[col][None, :]
    ridge = np.where(y - top < (bottom - top) * 0.5, np.float32(1.08), np.float32(0.88))
    gap = np.minimum(np.minimum(y - top, bottom - y), x - left) < 1.5
    shade = np.where(gap, np.float32(0.45), ridge).astype(np.float32)
    image = np.take(table.T, row[:, None] * cols + col[None, :], axis=1) * shade
    return image + value_noise(rng, size, (12.0, 3.0)) * np.float32(6.0)


def _sand(rng: np.random.Generator, size: Size) -> np.ndarray:
    base = _colour(rng, (192, 172, 132), 16)
    frequency = np.float32(2 * math.pi / rng.uniform(5.0, 16.0))
    warp = value_noise(rng, size, cell=40.0) * np.float32(2.0)
    ripples = np.sin(_direction(rng, size) * frequency + warp) * np.float32(rng.uniform(3.0, 10.0))
    low = value_noise(rng, size, (100.0, 20.0, 4.0)) * np.float32(10.0)
    return base + (ripples + low)


PAINTERS = {"road": _road, "grass": _grass, "water": _water, "urban": _urban, "sand": _sand}


def render_background(
    rng: np.random.Generator, primary: str, secondary: str | None, size: Size
) -> np.ndarray:
    """(3, H, W) float32 background: `primary` everywhere, and `secondary` (if any) over a
    band or half-plane with a wobbly soft edge."""
    image = np.ascontiguousarray(PAINTERS[primary](rng, size), dtype=np.float32)
    if secondary is None:
        return image
    other = PAINTERS[secondary](rng, size)
    offset = _direction(rng, size) - np.float32(rng.uniform(60.0, 580.0))
    offset += value_noise(rng, size, cell=80.0) * np.float32(25.0)
    if rng.random() < 0.5:
        offset = np.float32(rng.uniform(30.0, 120.0)) - np.abs(offset)
    image += (other - image) * _sigmoid(offset * np.float32(1.0 / 3.0))
    return image


def add_clutter(canvas: np.ndarray, rng: np.random.Generator) -> None:
    """Draw 2..9 distractors in place: bushes/trees, rocks, patches and shadows 0.02%..3% of
    the frame, coloured from the local background (shifted and desaturated), so they never
    reuse an object palette exactly."""
    height, width = canvas.shape[1:]
    scale_x, scale_y = width / FRAME_WIDTH, height / FRAME_HEIGHT
    for _ in range(int(rng.integers(2, 10))):
        area = math.exp(rng.uniform(math.log(2e-4), math.log(3e-2))) * FRAME_WIDTH * FRAME_HEIGHT
        aspect = math.exp(rng.uniform(-1.1, 1.1))
        box_w, box_h = math.sqrt(area * aspect), math.sqrt(area / aspect)
        x0, y0 = rng.uniform(-box_w / 2, FRAME_WIDTH), rng.uniform(-box_h / 2, FRAME_HEIGHT)
        part = _clutter_part(("ellipse", "rect", "capsule")[int(rng.integers(3))], aspect)
        row = min(max(int((y0 + box_h / 2) * scale_y), 0), height - 1)
        col = min(max(int((x0 + box_w / 2) * scale_x), 0), width - 1)
        local = canvas[:, row, col].astype(np.float64)
        shifted = local + (local.mean() - local) * rng.uniform(0.0, 0.8) + rng.normal(0.0, 22.0, 3)
        colour = np.clip(shifted * rng.uniform(0.45, 1.35), 0, 255).astype(np.float32)
        pixel_box = (x0 * scale_x, y0 * scale_y, (x0 + box_w) * scale_x, (y0 + box_h) * scale_y)
        opacity = 1.0 if rng.random() < 0.7 else float(rng.uniform(0.3, 0.6))
        light = (float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3)))
        colours = np.stack([colour] * 3)
        draw_parts(canvas, [part], colours, pixel_box, light, opacity, max_samples=1500)


def _clutter_part(kind: str, aspect: float) -> Part:
    if kind == "ellipse":
        return Part("ellipse", (aspect / 2, 0.5, aspect / 2, 0.5))
    if kind == "rect":
        return Part("rect", (0.0, 0.0, aspect, 1.0))
    radius = min(aspect, 1.0) / 2
    return Part("capsule", (radius, 0.5, max(aspect - radius, radius), 0.5, radius))


def gaussian_blur(image: np.ndarray, sigma_x: float, sigma_y: float) -> np.ndarray:
    """Gaussian blur of a (3, H, W) float32 image, edges replicated, as repeated 3-tap
    binomial passes [a, 1 - 2a, a] (variance 2a each, a <= 1/4) whose variances add up to
    sigma**2. A sigma under 0.2 pixels leaves that axis unblurred."""
    for axis, sigma in ((2, sigma_x), (1, sigma_y)):
        if sigma < 0.2:
            continue
        passes = math.ceil(sigma * sigma / 0.5)
        weight = np.float32(sigma * sigma / (2.0 * passes))
        for _ in range(passes):
            image = _three_tap(image, weight, axis)
    return image


def _three_tap(image: np.ndarray, weight: np.float32, axis: int) -> np.ndarray:
    def window(start: int | None, stop: int | None) -> tuple[slice, ...]:
        index = [slice(None)] * 3
        index[axis] = slice(start, stop)
        return tuple(index)

    blurred = image * (np.float32(1.0) - 2 * weight)
    blurred[window(1, None)] += image[window(None, -1)] * weight
    blurred[window(None, -1)] += image[window(1, None)] * weight
    blurred[window(None, 1)] += image[window(None, 1)] * weight
    blurred[window(-1, None)] += image[window(-1, None)] * weight
    return blurred


def apply_camera(canvas: np.ndarray, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """Optics blur, then lighting, gamma and sensor noise; returns the final (3, H, W) uint8
    image. Every step but the blur is per-pixel, so an unblurred scene changes only where its
    content does."""
    height, width = canvas.shape[1:]
    sigma_x = camera.blur_sigma * width / FRAME_WIDTH
    sigma_y = camera.blur_sigma * height / FRAME_HEIGHT
    blurred = gaussian_blur(canvas, sigma_x, sigma_y)
    cast = np.asarray(camera.colour_cast, dtype=np.float32) * np.float32(camera.brightness)
    gain = (cast * np.float32(camera.contrast))[:, None, None]
    offset = (cast * np.float32(128.0 * (1.0 - camera.contrast)) + np.float32(0.5))[:, None, None]
    lit = blurred * gain
    lit += offset
    np.clip(lit, 0.0, 255.0, out=lit)
    lut = np.round(255.0 * (np.arange(256) / 255.0) ** camera.gamma).astype(np.uint8)
    planes = Image.fromarray(lit.astype(np.uint8).reshape(3 * height, width))
    corrected = np.asarray(planes.point(lut.tolist())).reshape(3, height, width)
    noisy = pixel_noise(rng, (height, width), 3) * np.float32(camera.noise_sigma)
    noisy += corrected
    noisy += np.float32(0.5)
    np.clip(noisy, 0.0, 255.0, out=noisy)
    return noisy.astype(np.uint8)
