"""Reading the DAC-SDC folder layout."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ajpq.data import dacsdc
from ajpq.errors import InvalidData


def _xml(boxes: list[tuple[int, int, int, int]], name: str, size: bool = True) -> str:
    size_xml = "<size><width>640</width><height>360</height></size>" if size else ""
    objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for x0, y0, x1, y1 in boxes
    )
    return f"<annotation><filename>x</filename>{size_xml}{objects}</annotation>"


def _write(
    root: Path,
    folder: str,
    stem: str,
    box: tuple[int, int, int, int],
    colour: tuple[int, int, int],
    size: bool = True,
) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 36), colour).save(root / folder / f"{stem}.jpg", quality=95)
    (root / folder / f"{stem}.xml").write_text(_xml([box], folder, size))


@pytest.fixture()
def fixture_root(tmp_path: Path) -> Path:
    root = tmp_path / "dacsdc"
    _write(root, "person12", "0001", (64, 36, 320, 180), (20, 200, 20))
    _write(root, "boat1", "0002", (0, 0, 640, 360), (200, 20, 20))
    _write(root, "boat1", "0001", (32, 18, 96, 54), (200, 20, 20))
    _write(root, "car3", "0001", (8, 9, 16, 27), (20, 20, 200), size=False)
    return root


def test_loads_boxes_labels_and_images(fixture_root: Path) -> None:
    dataset = dacsdc(fixture_root, input_size=(16, 32))
    assert dataset.class_names == ("boat", "car", "person")
    assert np.array_equal(dataset.labels, np.array([0, 0, 1, 2], dtype=np.int64))
    expected = np.array(
        [
            [32 / 640, 18 / 360, 96 / 640, 54 / 360],
            [0.0, 0.0, 1.0, 1.0],
            [8 / 64, 9 / 36, 16 / 64, 27 / 36],  # no <size>: normalized by the JPEG's size
            [0.1, 0.1, 0.5, 0.5],
        ],
        dtype=np.float32,
    )
    assert np.array_equal(dataset.boxes, expected)
    assert dataset.images.shape == (4, 3, 16, 32) and dataset.images.dtype == np.uint8
    assert np.abs(dataset.images[0].mean(axis=(1, 2)) - [200, 20, 20]).max() < 6
    assert np.abs(dataset.images[2].mean(axis=(1, 2)) - [20, 20, 200]).max() < 6


def test_limit_keeps_evenly_spaced_images(fixture_root: Path) -> None:
    dataset = dacsdc(fixture_root, input_size=(16, 32), limit=2)
    assert np.array_equal(dataset.labels, np.array([0, 1], dtype=np.int64))
    assert dataset.class_names == ("boat", "person")
    assert np.array_equal(dataset.boxes[1], np.array([0.1, 0.1, 0.5, 0.5], dtype=np.float32))


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidData, match="does not exist"):
        dacsdc(tmp_path / "nowhere")


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "boat1").mkdir()
    with pytest.raises(InvalidData, match="no class folder"):
        dacsdc(tmp_path)


def test_xml_without_object(fixture_root: Path) -> None:
    (fixture_root / "car3" / "0001.xml").write_text(_xml([], "car3"))
    with pytest.raises(InvalidData, match="0001.xml has 0 <object>"):
        dacsdc(fixture_root)


def test_xml_with_two_objects(fixture_root: Path) -> None:
    path = fixture_root / "boat1" / "0002.xml"
    path.write_text(_xml([(1, 1, 5, 5), (6, 6, 9, 9)], "boat1"))
    with pytest.raises(InvalidData, match="0002.xml has 2 <object>"):
        dacsdc(fixture_root)


def test_unreadable_jpeg(fixture_root: Path) -> None:
    (fixture_root / "person12" / "0001.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(InvalidData, match="person12/0001.jpg is not a readable JPEG"):
        dacsdc(fixture_root)


def test_missing_xml(fixture_root: Path) -> None:
    (fixture_root / "car3" / "0001.xml").unlink()
    with pytest.raises(InvalidData, match="has no annotation"):
        dacsdc(fixture_root)


def test_malformed_xml(fixture_root: Path) -> None:
    (fixture_root / "car3" / "0001.xml").write_text("<annotation><object>")
    with pytest.raises(InvalidData, match="not valid XML"):
        dacsdc(fixture_root)
