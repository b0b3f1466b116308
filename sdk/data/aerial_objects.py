"""Objects of the synthetic aerial scenes: the 12 classes, their shapes and colours.

A class builds its object from a few primitives (ellipse, ring, rectangle, capsule, convex
polygon) in its own "native" coordinates. `draw_parts` maps the union bounding box of the
primitives exactly onto the target pixel box (an axis-aligned affine map), so the tight box
of the drawn object is the labelled box by construction. Edges are anti-aliased by
supersampling (up to 4x4 per pixel) and every object gets a linear light gradient plus a
dome shading on its round parts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Rgb = tuple[int, int, int]

WHITE, BLACK, GREY, SILVER = (228, 228, 224), (32, 32, 36), (118, 118, 122), (172, 174, 178)
RED, BLUE, YELLOW, GREEN = (180, 36, 36), (40, 66, 156), (222, 190, 44), (58, 122, 66)
ORANGE, DARK_BLUE, KHAKI, BROWN = (226, 118, 40), (34, 44, 80), (150, 132, 92), (112, 80, 58)
SKIN, HAIR, GLASS, MAGENTA = (190, 148, 118), (48, 34, 26), (46, 56, 68), (196, 44, 138)


@dataclass(frozen=True)
class ObjectClass:
    """One object class: its median box aspect (width / height in 640x360 frame pixels), its
    sampling frequency, the backgrounds it usually appears on, and three colour palettes
    (primary, secondary, accent) a part picks its colour from."""

    name: str
    aspect: float
    frequency: float
    backgrounds: tuple[str, ...]
    palettes: tuple[tuple[Rgb, ...], tuple[Rgb, ...], tuple[Rgb, ...]]


@dataclass(frozen=True)
class Part:
    """A primitive in native coordinates.

    kind "ellipse": (cx, cy, rx, ry), `hole` > 0 makes a ring, `upper` keeps the top half;
    "rect": (x0, y0, x1, y1); "capsule": (xa, ya, xb, yb, radius); "polygon": convex
    (x1, y1, x2, y2, ...). `colour` picks the palette (0 primary, 1 secondary, 2 accent) and
    `tone` scales it.
    """

    kind: str
    points: tuple[float, ...]
    colour: int = 0
    tone: float = 1.0
    hole: float = 0.0
    upper: bool = False


def part_bounds(part: Part) -> tuple[float, float, float, float]:
    """Exact tight box (x0, y0, x1, y1) of a part in native coordinates."""
    points = part.points
    if part.kind == "ellipse":
        cx, cy, rx, ry = points
        return cx - rx, cy - ry, cx + rx, cy if part.upper else cy + ry
    if part.kind == "rect":
        return points[0], points[1], points[2], points[3]
    if part.kind == "capsule":
        xa, ya, xb, yb, radius = points
        return (
            min(xa, xb) - radius,
            min(ya, yb) - radius,
            max(xa, xb) + radius,
            max(ya, yb) + radius,
        )
    xs, ys = points[0::2], points[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def union_bounds(parts: list[Part]) -> tuple[float, float, float, float]:
    """Tight box of all parts together."""
    x0s, y0s, x1s, y1s = zip(*(part_bounds(part) for part in parts), strict=True)
    return min(x0s), min(y0s), max(x1s), max(y1s)


def part_mask(part: Part, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | float]:
    """Which sample points (x row vector, y column vector) lie inside the part, and the
    dome shading factor there (1.0 for flat parts)."""
    points = part.points
    if part.kind == "ellipse":
        cx, cy, rx, ry = points
        dx, dy = (x - np.float32(cx)) / np.float32(rx), (y - np.float32(cy)) / np.float32(ry)
        radial = dx * dx + dy * dy
        mask = radial <= 1.0
        if part.hole > 0.0:
            mask &= radial >= part.hole**2
        if part.upper:
            mask &= y <= cy
        return mask, np.float32(1.0) - np.float32(0.35) * radial
    if part.kind == "rect":
        return ((x >= points[0]) & (x <= points[2])) & ((y >= points[1]) & (y <= points[3])), 1.0
    if part.kind == "capsule":
        return _capsule_mask(points, x, y), 1.0
    return _polygon_mask(points, x, y), 1.0


def _capsule_mask(points: tuple[float, ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xa, ya, xb, yb, radius = points
    dx, dy = xb - xa, yb - ya
    length_sq = max(dx * dx + dy * dy, 1e-12)
    t = np.clip(((x - xa) * dx + (y - ya) * dy) / length_sq, 0.0, 1.0)
    return (x - xa - t * dx) ** 2 + (y - ya - t * dy) ** 2 <= radius * radius


def _polygon_mask(points: tuple[float, ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xs, ys = points[0::2], points[1::2]
    count = len(xs)
    signed_area = sum(
        xs[i] * ys[(i + 1) % count] - xs[(i + 1) % count] * ys[i] for i in range(count)
    )
    orientation = 1.0 if signed_area >= 0 else -1.0
    mask = np.ones(np.broadcast_shapes(x.shape, y.shape), dtype=bool)
    for i in range(count):
        xa, ya, xb, yb = xs[i], ys[i], xs[(i + 1) % count], ys[(i + 1) % count]
        mask &= orientation * ((xb - xa) * (y - ya) - (yb - ya) * (x - xa)) >= 0.0
    return mask


def draw_parts(
    canvas: np.ndarray,
    parts: list[Part],
    colours: np.ndarray,
    pixel_box: tuple[float, float, float, float],
    light: tuple[float, float] = (0.0, 0.0),
    opacity: float = 1.0,
    flip: bool = False,
    max_samples: int = 24000,
) -> None:
    """Composite `parts` onto `canvas` (3, H, W float32, in place) so that their union box
    lands exactly on `pixel_box` (x0, y0, x1, y1 in pixels). colours: (3, 3) primary,
    secondary, accent RGB. light: linear shading slope along x and y of the object. Pixels
    are supersampled up to 4x4 while the region holds at most `max_samples` samples."""
    height, width = canvas.shape[1:]
    px0, py0, px1, py1 = pixel_box
    ix0, iy0 = max(math.floor(px0), 0), max(math.floor(py0), 0)
    ix1, iy1 = min(math.ceil(px1), width), min(math.ceil(py1), height)
    if ix1 <= ix0 or iy1 <= iy0 or px1 <= px0 or py1 <= py0:
        return
    cols, rows = ix1 - ix0, iy1 - iy0
    factor = min(max(int(math.sqrt(max_samples / (cols * rows))), 1), 4)
    u = _unit_samples(ix0, cols, factor, px0, px1)[None, :]
    v = _unit_samples(iy0, rows, factor, py0, py1)[:, None]
    nx0, ny0, nx1, ny1 = union_bounds(parts)
    x = np.float32(nx0) + (1.0 - u if flip else u) * np.float32(nx1 - nx0)
    y = np.float32(ny0) + v * np.float32(ny1 - ny0)
    which = np.zeros((rows * factor, cols * factor), dtype=np.intp)
    tone = np.zeros((rows * factor, cols * factor), dtype=np.float32)
    for index, part in enumerate(parts, start=1):
        mask, dome = part_mask(part, x, y)
        which[mask] = index
        tone = np.where(mask, np.float32(part.tone) * dome, tone)
    tone *= np.float32(1.0) + np.float32(light[0]) * (u - 0.5) + np.float32(light[1]) * (v - 0.5)
    table = np.zeros((3, len(parts) + 1), dtype=np.float32)
    table[:, 1:] = colours[[part.colour for part in parts]].T
    colour = table[:, which] * tone
    alpha = (which > 0).astype(np.float32)
    if factor > 1:
        colour = colour.reshape(3, rows, factor, cols, factor).sum(axis=(2, 4))
        alpha = alpha.reshape(rows, factor, cols, factor).sum(axis=(1, 3))
    weight = np.float32(opacity / (factor * factor))
    region = canvas[:, iy0:iy1, ix0:ix1]
    region *= np.float32(1.0) - alpha * weight
    region += colour * weight


def _unit_samples(start: int, count: int, factor: int, low: float, high: float) -> np.ndarray:
    """Sample positions of `count` pixels from `start`, `factor` per pixel, in units of the
    box [low, high] (0 at low, 1 at high), float32."""
    samples = start + (np.arange(count * factor, dtype=np.float64) + 0.5) / factor
    return ((samples - low) / (high - low)).astype(np.float32)


def _person(aspect: float, rng: np.random.Generator, scale: float = 1.0) -> list[Part]:
    """A standing figure: head, torso with arms, two legs; `scale` shrinks it vertically."""
    width = aspect
    stride = rng.uniform(0.0, 0.2) * width
    top = 1.0 - scale
    return [
        Part("rect", (0.2 * width, top + 0.55 * scale, 0.45 * width - stride / 2, 1.0), 1),
        Part("rect", (0.55 * width + stride / 2, top + 0.55 * scale, 0.8 * width, 1.0), 1),
        Part("ellipse", (0.5 * width, top + 0.4 * scale, 0.5 * width, 0.2 * scale), 0),
        Part("ellipse", (0.5 * width, top + 0.11 * scale, 0.22 * width, 0.11 * scale), 2),
    ]


def _rider(aspect: float, rng: np.random.Generator) -> list[Part]:
    width = aspect
    body = _person(aspect, rng, scale=0.65)[2:]
    return [
        Part("ellipse", (0.5 * width, 0.72, 0.12 * width, 0.28), 1, tone=0.6),
        Part("capsule", (0.08 * width, 0.5, 0.92 * width, 0.5, 0.05), 1),
        *body,
    ]


def _car(aspect: float, rng: np.random.Generator) -> list[Part]:
    width = aspect
    front = rng.uniform(0.22, 0.32) * width
    return [
        Part("capsule", (0.35, 0.5, width - 0.35, 0.5, 0.5), 0),
        Part("rect", (0.12, 0.02, width - 0.12, 0.98), 0),
        Part("rect", (front, 0.12, front + 0.16 * width, 0.88), 1),
        Part("rect", (front + 0.18 * width, 0.1, 0.82 * width, 0.9), 0, tone=1.12),
        Part("rect", (0.84 * width, 0.18, 0.9 * width, 0.82), 1),
    ]


def _truck(aspect: float, rng: np.random.Generator) -> list[Part]:
    width = aspect
    cab = rng.uniform(0.2, 0.28) * width
    return [
        Part("rect", (0.0, 0.08, cab, 0.92), 1),
        Part("rect", (0.04 * width, 0.15, 0.1 * width, 0.85), 2),
        Part("rect", (cab + 0.03 * width, 0.0, width, 1.0), 0),
        Part("rect", (cab + 0.06 * width, 0.45, 0.97 * width, 0.55), 0, tone=0.85),
    ]


def _boat(aspect: float, rng: np.random.Generator) -> list[Part]:
    width = aspect
    bow = rng.uniform(0.68, 0.8) * width
    cabin = rng.uniform(0.25, 0.4) * width
    return [
        Part("rect", (0.0, 0.12, bow, 0.88), 0),
        Part("polygon", (bow, 0.12, width, 0.5, bow, 0.88), 0),
        Part("rect", (cabin, 0.28, cabin + 0.25 * width, 0.72), 1),
        Part("rect", (cabin + 0.04 * width, 0.36, cabin + 0.12 * width, 0.64), 2),
        Part("rect", (0.0, 0.0, 0.06 * width, 1.0), 0, tone=0.8),
    ]


def _building(aspect: float, rng: np.random.Generator) -> list[Part]:
    width = aspect
    ridge = rng.uniform(0.4, 0.6)
    parts = [
        Part("rect", (0.0, 0.0, width, ridge), 0, tone=1.12),
        Part("rect", (0.0, ridge, width, 1.0), 0, tone=0.78),
    ]
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = rng.uniform(0.05, 0.85) * width, rng.uniform(0.05, 0.85)
        parts.append(Part("rect", (x0, y0, x0 + 0.08 * width, y0 + 0.08), 2))
    return parts


def _bike(aspect: float, rng: np.random.Generator) -> list[Part]:
    width = aspect
    radius = rng.uniform(0.28, 0.34)
    rear, front, seat = (radius, 1.0 - radius), (width - radius, 1.0 - radius), (0.42 * width, 0.3)
    bar = (0.74 * width, 0.2)
    return [
        Part("ellipse", (*rear, radius, radius), 1, hole=0.7),
        Part("ellipse", (*front, radius, radius), 1, hole=0.7),
        Part("capsule", (*rear, *seat, 0.045), 0),
        Part("capsule", (*seat, *front, 0.045), 0),
        Part("capsule", (*seat, *bar, 0.045), 0),
        Part("capsule", (bar[0], bar[1], front[0], front[1], 0.04), 0),
        Part("ellipse", (seat[0], 0.0 + 0.28, 0.08 * width, 0.05), 2),
    ]


def _group(aspect: float, rng: np.random.Generator) -> list[Part]:
    parts: list[Part] = []
    for _ in range(int(rng.integers(3, 7))):
        x, y = rng.uniform(0.1, aspect - 0.1), rng.uniform(0.2, 0.8)
        colour, tone = int(rng.integers(0, 2)), float(rng.uniform(0.7, 1.3))
        parts.append(Part("ellipse", (x, y + 0.08, 0.09, 0.18), colour, tone=tone))
        parts.append(Part("ellipse", (x, y - 0.12, 0.06, 0.06), 2))
    return parts


def _drone(aspect: float, rng: np.random.Generator) -> list[Part]:
    width, rotor = aspect, rng.uniform(0.16, 0.22)
    corners = [
        (rotor, rotor),
        (width - rotor, rotor),
        (rotor, 1 - rotor),
        (width - rotor, 1 - rotor),
    ]
    centre = (width / 2, 0.5)
    parts = [Part("capsule", (*centre, x, y, 0.035), 2) for x, y in corners]
    parts += [Part("ellipse", (x, y, rotor, rotor), 1, hole=0.55) for x, y in corners]
    parts.append(Part("ellipse", (*centre, 0.16 * width, 0.16), 0))
    return parts


def _paraglider(aspect: float, rng: np.random.Generator) -> list[Part]:
    width, spring = aspect, rng.uniform(0.5, 0.62)
    pilot = (width / 2, 0.9)
    return [
        Part("ellipse", (width / 2, spring, width / 2, spring), 0, hole=0.78, upper=True),
        Part("ellipse", (width / 2, spring, 0.3 * width, spring * 0.95), 1, hole=0.85, upper=True),
        Part("capsule", (0.06 * width, spring, *pilot, 0.012), 2),
        Part("capsule", (0.94 * width, spring, *pilot, 0.012), 2),
        Part("ellipse", (width / 2, 0.92, 0.05 * width, 0.08), 1),
    ]


def _wakeboard(aspect: float, rng: np.random.Generator) -> list[Part]:
    width = aspect
    return [
        *_person(aspect, rng, scale=0.86),
        Part("ellipse", (width / 2, 0.93, width / 2, 0.07), 1),
    ]


def _whale(aspect: float, rng: np.random.Generator) -> list[Part]:
    width, tail = aspect, rng.uniform(0.78, 0.84) * aspect
    return [
        Part("ellipse", (0.42 * width, 0.5, 0.42 * width, 0.42), 0),
        Part("polygon", (0.7 * width, 0.38, tail, 0.45, tail, 0.55, 0.7 * width, 0.62), 0),
        Part("capsule", (tail, 0.5, width - 0.1, 0.12, 0.1), 0, tone=0.9),
        Part("capsule", (tail, 0.5, width - 0.1, 0.88, 0.1), 0, tone=0.9),
        Part("ellipse", (0.4 * width, 0.58, 0.25 * width, 0.16), 1),
        Part("ellipse", (0.12 * width, 0.4, 0.025 * width, 0.06), 2),
    ]


OBJECT_CLASSES: tuple[ObjectClass, ...] = (
    ObjectClass("person", 0.4, 0.16, ("grass", "road", "sand"),
                ((RED, BLUE, WHITE, BLACK, YELLOW, GREEN, ORANGE, GREY),
                 (DARK_BLUE, BLACK, GREY, KHAKI, BROWN), (HAIR, SKIN, BLACK))),
    ObjectClass("car", 1.8, 0.14, ("road",),
                ((WHITE, BLACK, SILVER, RED, BLUE, GREY, DARK_BLUE), (GLASS, BLACK), (GLASS,))),
    ObjectClass("boat", 2.5, 0.12, ("water",),
                ((WHITE, RED, BLUE, BLACK, SILVER), (KHAKI, WHITE, GREY, BLUE), (BLACK, ORANGE))),
    ObjectClass("truck", 2.2, 0.06, ("road",),
                ((WHITE, GREY, BLUE, ORANGE, GREEN, RED), (WHITE, RED, BLUE, YELLOW), (GLASS,))),
    ObjectClass("building", 1.2, 0.07, ("urban",),
                (((168, 78, 58), GREY, BLACK, WHITE, (70, 110, 90), BROWN), (GREY,),
                 (SILVER, WHITE, BLACK))),
    ObjectClass("bike", 1.5, 0.06, ("road", "grass"),
                ((RED, BLUE, BLACK, SILVER, GREEN, YELLOW), (BLACK,), (BLACK, BROWN))),
    ObjectClass("rider", 0.5, 0.09, ("road", "grass"),
                ((RED, BLUE, BLACK, YELLOW, WHITE, GREEN), (BLACK, SILVER, RED),
                 (WHITE, BLACK, RED))),
    ObjectClass("group", 1.3, 0.10, ("grass", "sand", "road"),
                ((RED, BLUE, WHITE, YELLOW, GREEN, ORANGE), (DARK_BLUE, BLACK, KHAKI, GREY),
                 (HAIR, SKIN))),
    ObjectClass("drone", 1.0, 0.05, ("grass", "sand", "road", "urban"),
                ((WHITE, BLACK, GREY, RED), (BLACK, SILVER), (BLACK, GREY))),
    ObjectClass("paraglider", 1.6, 0.05, ("grass", "sand"),
                ((RED, YELLOW, ORANGE, BLUE, GREEN, MAGENTA, WHITE), (WHITE, BLACK, BLUE),
                 (BLACK, GREY))),
    ObjectClass("wakeboard", 0.6, 0.05, ("water",),
                ((BLACK, RED, BLUE, YELLOW), (YELLOW, WHITE, RED, GREEN, BLUE), (HAIR, SKIN))),
    ObjectClass("whale", 2.8, 0.05, ("water",),
                (((60, 65, 76), (44, 50, 60), (90, 95, 106)), ((150, 150, 156), (120, 126, 132)),
                 ((20, 24, 30),))),
)  # fmt: skip

BUILDERS: dict[str, Callable[[float, np.random.Generator], list[Part]]] = {
    "person": _person, "car": _car, "boat": _boat, "truck": _truck, "building": _building,
    "bike": _bike, "rider": _rider, "group": _group, "drone": _drone,
    "paraglider": _paraglider, "wakeboard": _wakeboard, "whale": _whale,
}  # fmt: skip


def object_colours(object_class: ObjectClass, rng: np.random.Generator) -> np.ndarray:
    """(3, 3) float32 primary, secondary, accent colours: a palette entry each, jittered by
    a per-instance brightness (x0.8..1.2) and +-12 levels per channel."""
    colours = np.empty((3, 3), dtype=np.float32)
    for role, palette in enumerate(object_class.palettes):
        base = np.asarray(palette[int(rng.integers(len(palette)))], dtype=np.float32)
        colours[role] = base * rng.uniform(0.8, 1.2) + rng.normal(0.0, 12.0, 3)
    return np.clip(colours, 0.0, 255.0)


def draw_object(
    canvas: np.ndarray,
    label: int,
    pixel_box: tuple[float, float, float, float],
    aspect: float,
    flip: bool,
    rng: np.random.Generator,
) -> None:
    """Draw one instance of class `label` so its tight box is `pixel_box`; `aspect` is the
    box's width / height in frame pixels (the shape is laid out for it)."""
    object_class = OBJECT_CLASSES[label]
    parts = BUILDERS[object_class.name](aspect, rng)
    colours = object_colours(object_class, rng)
    light = (float(rng.uniform(-0.4, 0.4)), float(rng.uniform(-0.4, 0.4)))
    draw_parts(canvas, parts, colours, pixel_box, light=light, flip=flip)
