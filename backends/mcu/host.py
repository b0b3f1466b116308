"""Host build of the generated model: the same C, compiled by gcc into a shared library and
called through ctypes, so ``Artifact.run_host(x)`` can be compared with ``HwGraph.run(x)``."""

import ctypes
import subprocess
from pathlib import Path

import numpy as np

from ajpq import resources
from ajpq.errors import AjpqError, ToolchainMissing

FIRMWARE = resources.FIRMWARE_DIR
HOST_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]


def runtime_sources() -> list[Path]:
    """The portable runtime every build links: kernels and the Huffman decoder."""
    return sorted((FIRMWARE / "kernels").glob("*.c")) + [FIRMWARE / "runtime" / "ajpq_huffman.c"]


def include_dirs(src_dir: Path) -> list[Path]:
    return [src_dir, FIRMWARE / "include", FIRMWARE / "runtime"]


def build_host_library(src_dir: Path, out: Path, sanitize: bool = False) -> Path:
    sources = [src_dir / "ajpq_model.c", src_dir / "ajpq_weights.c", *runtime_sources()]
    flags = HOST_FLAGS + (SANITIZE_FLAGS if sanitize else [])
    command = [
        "gcc",
        *flags,
        *(f"-I{d}" for d in include_dirs(src_dir)),
        *map(str, sources),
        "-o",
        str(out),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise ToolchainMissing(
            "gcc is missing: install the Debian package gcc "
            "(apt-get install gcc), or run make setup"
        ) from None
    if result.returncode != 0:
        raise AjpqError(f"the host build of {src_dir} failed: {result.stderr.strip()[:400]}")
    return out


class HostModel:
    """ctypes wrapper of a host-built model library."""

    def __init__(self, library: Path, input_elements: int, output_elements: int) -> None:
        self.lib = ctypes.CDLL(str(library))
        self.input_elements, self.output_elements = input_elements, output_elements
        self.lib.ajpq_model_set_input.argtypes = [ctypes.c_void_p]
        self.lib.ajpq_model_get_output.argtypes = [ctypes.c_void_p]

    def run(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (N, C, H, W) -> int64 outputs (N, *output shape flattened)."""
        images = np.ascontiguousarray(images, dtype=np.uint8)
        outputs = np.zeros((len(images), self.output_elements), dtype=np.int32)
        for image, out in zip(images, outputs, strict=True):
            flat = np.ascontiguousarray(image.reshape(-1))
            if flat.size != self.input_elements:
                raise AjpqError(
                    f"the model takes {self.input_elements} pixels per image, not {flat.size}"
                )
            self.lib.ajpq_model_set_input(flat.ctypes.data)
            self.lib.ajpq_model_run()
            self.lib.ajpq_model_get_output(out.ctypes.data)
        return outputs.astype(np.int64)
