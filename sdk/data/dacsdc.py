"""dacsdc: read the real DAC-SDC drone data set from its folder layout.

Layout: one subfolder per object instance, named class name + instance number (`boat1/`,
`car3/`), each holding `0001.jpg` + `0001.xml` pairs. The XML is VOC-style with exactly one
`<object>`; its `<bndbox>` is in pixels of `<size>` (or of the JPEG when `<size>` is absent).
The class is the subfolder name without its trailing digits; class names are the sorted set
found. Images are resized (bilinear, antialiased) to `input_size`; boxes are normalized, so
they need no rescaling.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ajpq.data.dataset import Dataset
from ajpq.errors import InvalidData

_TRAILING_DIGITS = re.compile(r"\d+$")


def dacsdc(
    path: str | Path, input_size: tuple[int, int] = (160, 320), limit: int | None = None
) -> Dataset:
    """Load the DAC-SDC set at `path` in sorted (folder, file) order. With `limit`, keep
    `limit` images evenly spaced over that order (so every class stays represented)."""
    root = Path(path)
    if not root.is_dir():
        raise InvalidData(
            f"DAC-SDC folder {root} does not exist; pass the folder holding boat1/..."
        )
    pairs = _find_pairs(root)
    if limit is not None:
        if limit < 1:
            raise InvalidData(f"dacsdc: limit must be at least 1 or None; got {limit}.")
        if limit < len(pairs):
            chosen = np.linspace(0, len(pairs) - 1, limit).round().astype(int)
            pairs = [pairs[index] for index in chosen]
    class_names = tuple(sorted({_class_name(image.parent.name) for image, _ in pairs}))
    height, width = input_size
    images = np.empty((len(pairs), 3, height, width), dtype=np.uint8)
    boxes = np.empty((len(pairs), 4), dtype=np.float32)
    labels = np.empty(len(pairs), dtype=np.int64)
    for index, (image_path, xml_path) in enumerate(pairs):
        image, original_size = _read_image(image_path, (height, width))
        images[index] = image
        boxes[index] = _read_box(xml_path, original_size)
        labels[index] = class_names.index(_class_name(image_path.parent.name))
    return Dataset(images=images, boxes=boxes, labels=labels, class_names=class_names)


def _class_name(folder_name: str) -> str:
    return _TRAILING_DIGITS.sub("", folder_name)


def _find_pairs(root: Path) -> list[tuple[Path, Path]]:
    pairs: list[tuple[Path, Path]] = []
    for folder in sorted(entry for entry in root.iterdir() if entry.is_dir()):
        if not _class_name(folder.name):
            raise InvalidData(f"DAC-SDC folder {folder} has no class name; name it like boat1.")
        for image_path in sorted(folder.glob("*.jpg")):
            xml_path = image_path.with_suffix(".xml")
            if not xml_path.is_file():
                raise InvalidData(f"{image_path} has no annotation; add {xml_path.name} beside it.")
            pairs.append((image_path, xml_path))
    if not pairs:
        raise InvalidData(f"DAC-SDC folder {root} holds no class folder with .jpg images.")
    return pairs


def _read_image(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """(3, H, W) uint8 resized image and the original (width, height)."""
    try:
        with Image.open(path) as image:
            original = image.size
            resized = image.convert("RGB").resize((size[1], size[0]), Image.Resampling.BILINEAR)
    except (OSError, UnidentifiedImageError) as error:
        raise InvalidData(
            f"{path} is not a readable JPEG ({error}); replace or remove it."
        ) from error
    return np.asarray(resized).transpose(2, 0, 1), original


def _read_box(path: Path, image_size: tuple[int, int]) -> np.ndarray:
    """Normalized x0, y0, x1, y1 of the single object in a VOC XML file."""
    try:
        annotation = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise InvalidData(f"{path} is not valid XML ({error}); fix or remove it.") from error
    objects = annotation.findall("object")
    if len(objects) != 1:
        raise InvalidData(
            f"{path} has {len(objects)} <object> entries; DAC-SDC needs exactly one per image."
        )
    width, height = image_size
    size = annotation.find("size")
    if size is not None:
        width = int(_number(size, "width", path) or width)
        height = int(_number(size, "height", path) or height)
    bndbox = objects[0].find("bndbox")
    if bndbox is None:
        raise InvalidData(f"{path} has an <object> without <bndbox>; add its box in pixels.")
    corners = [_number(bndbox, tag, path) for tag in ("xmin", "ymin", "xmax", "ymax")]
    box = np.array(corners, dtype=np.float64) / np.array([width, height, width, height])
    box = np.clip(box, 0.0, 1.0)
    if box[2] <= box[0] or box[3] <= box[1]:
        raise InvalidData(f"{path} has an empty box {corners}; xmax/ymax must exceed xmin/ymin.")
    return box.astype(np.float32)


def _number(element: ElementTree.Element, tag: str, path: Path) -> float:
    child = element.find(tag)
    if child is None or child.text is None:
        raise InvalidData(f"{path} lacks <{tag}> under <{element.tag}>; add it.")
    try:
        return float(child.text.strip())
    except ValueError as error:
        raise InvalidData(f"{path} has a non-numeric <{tag}> {child.text!r}; fix it.") from error
