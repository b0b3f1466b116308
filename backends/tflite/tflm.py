"""The real TFLM interpreter (the ``tflite-micro`` package), in ajpq's terms: uint8 NCHW
images in, the golden executor's integers out; the smallest arena a model allocates in; the
flatbuffer alignment TFLM needs; its LUT weight compression."""

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ajpq.backends.tflite.flatbuffer import INSTALL
from ajpq.errors import AjpqError, ToolchainMissing

ARENA = 64 << 20  # the arena the interpreter here gets (TFLM crashes on some failed allocations)


def runtime() -> Any:
    try:
        from tflite_micro import runtime as tflm_runtime
    except ImportError:
        raise ToolchainMissing(f"running .tflite files needs tflite-micro: {INSTALL}") from None
    return tflm_runtime


@contextmanager
def redirected(descriptors: tuple[int, ...], target: int) -> Iterator[None]:
    """Point the process's ``descriptors`` (1: stdout, 2: stderr) at file descriptor
    ``target`` for the block: TFLM's C++ writes there, below Python's sys.stdout."""
    saved = [os.dup(fd) for fd in descriptors]
    for fd in descriptors:
        os.dup2(target, fd)
    try:
        yield
    finally:
        for fd, copy in zip(descriptors, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


@contextmanager
def quiet() -> Iterator[None]:
    """Silence TFLM's C++ messages (it prints each failed allocation to stdout/stderr)."""
    with open(os.devnull, "w") as null, redirected((1, 2), null.fileno()):
        yield


def interpreter(model: bytes, arena_size: int = ARENA) -> Any:
    """A TFLM interpreter on ``model``; one sentence when TFLM refuses it."""
    try:
        with quiet():
            return runtime().Interpreter.from_bytes(bytes(model), arena_size=arena_size)
    except (RuntimeError, ValueError) as exc:
        raise AjpqError(
            f"TFLM refused the model with a {arena_size}-byte arena ({exc}); re-export it "
            "with ajpq.compile(..., backend='tflite')"
        ) from None


def arena_bytes(model: bytes) -> int:
    """The arena bytes TFLM's own allocation report gives for ``model`` after one inference
    (its recording allocator's total: head, the activations, plus tail, the persistent
    data). Probing smaller arenas until allocation fails is not safe: TFLM crashes on some
    failed allocations."""
    tflm = interpreter(model)
    input_details = tflm.get_input_details(0)
    tflm.set_input(np.zeros(input_details["shape"], dtype=np.int8), 0)
    tflm.invoke()
    with tempfile.TemporaryFile(mode="w+") as captured:
        with redirected((2,), captured.fileno()):
            tflm.print_allocations()
        captured.seek(0)
        match = re.search(r"Arena allocation total (\d+) bytes", captured.read())
    if match is None:
        raise AjpqError("TFLM's allocation report gave no arena total; update tflite-micro")
    return int(match.group(1))


def run(model: bytes, images: np.ndarray, zero_point: int) -> np.ndarray:
    """Run uint8 images (N, C, H, W) through TFLM: int8 ``pixel - 128`` in NHWC; the output
    minus its ``zero_point``, NCHW (or (N, F)), as int64: what ``HwGraph.run`` gives."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    tflm = interpreter(model)
    outputs = []
    for image in images:
        pixels = image.transpose(1, 2, 0).astype(np.int16) - 128
        tflm.set_input(pixels.astype(np.int8)[None], 0)
        tflm.invoke()
        out = tflm.get_output(0).astype(np.int64) - zero_point
        outputs.append(out.transpose(0, 3, 1, 2) if out.ndim == 4 else out)
    return np.concatenate(outputs)


def align(model: bytes) -> bytes:
    """The flatbuffer with the alignment TFLM requires of its buffers (the Python flatbuffers
    writer ignores ``force_align``), by tflite-micro's own aligner."""
    from pathlib import Path

    try:
        from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper
    except ImportError:
        raise ToolchainMissing(f"aligning .tflite files needs tflite-micro: {INSTALL}") from None
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.tflite", Path(tmp) / "out.tflite"
        source.write_bytes(model)
        tflite_flatbuffer_align_wrapper.align_tflite_model(str(source), str(target))
        return target.read_bytes()


def lut_bits(weight: np.ndarray, axis: int) -> int:
    """The index width TFLM's per-channel LUT needs for ``weight``: enough for the channel
    with the most distinct values (at least 1)."""
    channels = np.moveaxis(weight, axis, 0).reshape(weight.shape[axis], -1)
    most = max(len(np.unique(channel)) for channel in channels)
    return max(1, int(np.ceil(np.log2(most))))


def lut_compress(model: bytes, weights: list[tuple[int, int, np.ndarray]]) -> bytes | None:
    """``model`` with every weight tensor ``(index, channel axis, values)`` whose channels
    hold at most 2^7 values LUT-compressed by TFLM's compressor (per channel, decoded by its
    DECODE op), aligned; None when no tensor qualifies."""
    try:
        from tflite_micro.tensorflow.lite.micro.compression import compress, spec
    except ImportError:
        raise ToolchainMissing(f"TFLM's compression needs tflite-micro: {INSTALL}") from None
    specs = []
    for index, axis, values in weights:
        bits = lut_bits(values, axis)
        if bits <= 7:
            method = spec.LookUpTableCompression(bits, spec.PerChannel(axis))
            specs.append(spec.Tensor(subgraph=0, tensor=index, compression=[method]))
    if not specs:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "resulted in expansion": the caller compares sizes
        return bytes(compress(model, specs))
