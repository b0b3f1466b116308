"""Samples: numpy arrays, torch Datasets and DataLoaders read as the same pixels."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ajpq.data import ArraySamples, TorchSamples, as_samples, load_samples
from ajpq.data.samples import to_pixels
from ajpq.errors import InvalidData

MEAN, STD = (0.2, 0.4, 0.6), (0.25, 0.5, 0.3)


def _pixels(count: int = 10, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, channels, 4, 6), dtype=np.uint8)


def _normalized(pixels: np.ndarray) -> torch.Tensor:
    mean = torch.tensor(MEAN).view(1, -1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1)
    return (torch.from_numpy(pixels).float() / 255 - mean) / std


def _all(samples: object) -> tuple[torch.Tensor, torch.Tensor]:
    batches = list(samples.batches(3, shuffle=True, seed=4))  # type: ignore[attr-defined]
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def test_every_source_gives_the_same_pixels_in_the_same_order() -> None:
    pixels = _pixels()
    labels = np.arange(10)
    from_arrays = _all(as_samples((pixels, labels)))
    dataset = TensorDataset(_normalized(pixels), torch.from_numpy(labels))
    from_dataset = _all(as_samples(dataset, (MEAN, STD)))
    from_loader = _all(as_samples(DataLoader(dataset, batch_size=7), (MEAN, STD)))
    unnormalized = TensorDataset(torch.from_numpy(pixels).float() / 255, torch.from_numpy(labels))
    from_to_tensor = _all(as_samples(unnormalized))
    for images, targets in (from_dataset, from_loader, from_to_tensor):
        assert torch.equal(images, from_arrays[0]) and torch.equal(targets, from_arrays[1])
    assert from_arrays[1].tolist() == np.random.default_rng(4).permutation(10).tolist()


def test_subset_and_image() -> None:
    pixels = _pixels()
    dataset = TensorDataset(_normalized(pixels), torch.arange(10))
    samples = TorchSamples(dataset, (MEAN, STD)).subset([7, 2])
    assert len(samples) == 2
    assert np.array_equal(samples.image(0), pixels[7]) and samples.image(0).dtype == np.uint8
    arrays = ArraySamples(pixels, np.arange(10)).subset([7, 2])
    assert np.array_equal(arrays.image(1), pixels[2])


def test_grayscale_arrays_get_a_channel_axis() -> None:
    samples = ArraySamples(_pixels(channels=1)[:, 0], np.zeros(10, dtype=np.int64))
    assert samples.images.shape == (10, 1, 4, 6)


def test_a_torch_dataset_is_read_lazily() -> None:
    reads: list[int] = []

    class Counting(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return 1000

        def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
            reads.append(index)
            return torch.zeros(1, 2, 2, dtype=torch.uint8), 0

    images, _ = next(TorchSamples(Counting()).batches(4))
    assert images.shape == (4, 1, 2, 2) and sorted(reads) == [0, 1, 2, 3]


def test_wrong_normalization_is_refused_in_one_sentence() -> None:
    with pytest.raises(InvalidData, match="do not map back to whole pixels"):
        to_pixels(_normalized(_pixels()), None)
    with pytest.raises(InvalidData, match="cannot read data of type str"):
        as_samples("images.npz")
    with pytest.raises(InvalidData, match="one row per image"):
        ArraySamples(_pixels(), np.zeros(3))
    with pytest.raises(InvalidData, match="must be a uint8 numpy array"):
        ArraySamples(_pixels().astype(np.float32), np.zeros(10))


def test_npz_files(tmp_path: object) -> None:
    pixels, labels = _pixels(), np.arange(10)
    path = ArraySamples(pixels, labels).save(tmp_path / "d.npz")  # type: ignore[operator]
    loaded = load_samples(path)
    assert isinstance(loaded, ArraySamples)
    assert np.array_equal(loaded.images, pixels) and np.array_equal(loaded.targets, labels)
    np.savez(tmp_path / "bad.npz", pictures=pixels)  # type: ignore[operator]
    with pytest.raises(InvalidData, match="needs `images` and `labels`"):
        load_samples(tmp_path / "bad.npz")  # type: ignore[operator]
