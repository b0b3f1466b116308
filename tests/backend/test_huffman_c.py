"""The C Huffman decoder (firmware/runtime/ajpq_huffman.c) inverts huffman.encode exactly.

Builds the decoder and the tables that ``huffman.c_table`` writes with host gcc into a shared
library and decodes random layers through ctypes; builds them again with ASan + UBSan into a
small driver that reads each stream from an exact-size heap buffer (one padding byte short,
which checks the documented read-ahead bound); and compiles both for the Cortex-M4 with
arm-none-eabi-gcc. A missing compiler skips with the reason (``--strict-hardware`` fails).
"""

import ctypes
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ajpq.backends.mcu import huffman

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "firmware" / "runtime"
DECODER = RUNTIME / "ajpq_huffman.c"
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-pedantic"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
READ_AHEAD_BYTES = 3  # the decoder reads at most this far past the last code byte

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ajpq_huffman.h"

const ajpq_huffman_table_t *ajpq_test_table(uint32_t index);

static uint32_t read_u32(FILE *file)
{
    uint8_t b[4] = {0, 0, 0, 0};
    if (fread(b, 1, 4, file) != 4) {
        return 0xFFFFFFFFu;
    }
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int main(int argc, char **argv)
{
    FILE *file = argc == 2 ? fopen(argv[1], "rb") : NULL;
    if (file == NULL) {
        return 2;
    }
    uint32_t cases = read_u32(file);
    for (uint32_t k = 0; k < cases; ++k) {
        uint32_t index = read_u32(file), count = read_u32(file), size = read_u32(file);
        uint8_t *data = malloc(size);     /* exact size: ASan flags any read past it */
        int8_t *expected = malloc(count);
        int8_t *out = malloc(count);
        if (data == NULL || expected == NULL || out == NULL ||
            fread(data, 1, size, file) != size || fread(expected, 1, count, file) != count) {
            return 3;
        }
        const ajpq_huffman_table_t *table = ajpq_test_table(index);
        int valid = ajpq_huffman_validate(table);
        int result = ajpq_huffman_decode(table, data, size, count, out);
        printf("case %u %s %d %d\n", (unsigned)k,
               memcmp(out, expected, count) ? "differs" : "equal", valid, result);
        free(data);
        free(expected);
        free(out);
    }
    fclose(file);
    return 0;
}
"""


@dataclass(frozen=True)
class Case:
    symbols: np.ndarray
    lookup_bits: int


def _quantized(rng: np.random.Generator, size: int, bit_widths: np.ndarray) -> np.ndarray:
    """Gaussian weights quantized per channel with max-abs scales, one width per channel."""
    weights = rng.normal(size=(bit_widths.size, size))
    qmax = 2.0 ** (bit_widths.reshape(-1, 1) - 1) - 1
    scale = np.abs(weights).max(axis=1, keepdims=True) / qmax
    return np.clip(np.round(weights / scale), -qmax, qmax).astype(np.int8).ravel()


def _cases() -> list[Case]:
    rng = np.random.default_rng(2024)
    fibonacci = [1, 1]
    while len(fibonacci) < 20:  # a textbook code 19 bits deep: limited to 16
        fibonacci.append(fibonacci[-1] + fibonacci[-2])
    layers = [
        np.array([-7], dtype=np.int8),  # 1 weight
        np.full(333, 42, dtype=np.int8),  # one symbol
        np.array([127, -127, 0], dtype=np.int8),
        np.arange(-127, 128, dtype=np.int8),  # all 255 symbols once
        np.repeat(np.arange(-127, 128), np.arange(1, 256)).astype(np.int8),
        rng.permutation(np.repeat(np.arange(20, dtype=np.int8), fibonacci)),
        _quantized(rng, 100_000, np.array([8])),  # 100k weights
        _quantized(rng, 25_000, rng.integers(2, 9, 4)),  # mixed, 100k weights
    ]
    for _ in range(26):
        channels = int(rng.integers(1, 9))
        size = int(rng.choice([1, 7, 64, 576, 3000]))
        widths = rng.integers(2, 9, channels) if rng.random() < 0.5 else np.full(channels, 4)
        layer = _quantized(rng, size, widths)
        if rng.random() < 0.3:  # skew: a geometric tail instead of a Gaussian
            tail = rng.geometric(rng.uniform(0.2, 0.9), layer.size) - 1
            layer = (tail * rng.choice([-1, 1], layer.size)).clip(-127, 127).astype(np.int8)
        layers.append(layer)
    bit_choices = [1, 4, 8, 8, 9, 10, 16]
    return [Case(layer, bit_choices[i % len(bit_choices)]) for i, layer in enumerate(layers)]


CASES = _cases()


def _compiler(name: str, config: pytest.Config) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed; the C Huffman decoder tests need it"
        if config.getoption("--strict-hardware"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _build(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"


@pytest.fixture(scope="module")
def tables_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parts = ['#include "ajpq_huffman.h"\n']
    for index, case in enumerate(CASES):
        code = huffman.build_code(case.symbols)
        parts.append(huffman.c_table(f"table_{index}", code, case.lookup_bits))
    pointers = ", ".join(f"&table_{index}" for index in range(len(CASES)))
    parts.append(
        "const ajpq_huffman_table_t *ajpq_test_table(uint32_t index);\n"
        f"static const ajpq_huffman_table_t *const tables[] = {{{pointers}}};\n"
        "const ajpq_huffman_table_t *ajpq_test_table(uint32_t index) { return tables[index]; }\n"
    )
    path = tmp_path_factory.mktemp("huffman") / "tables.c"
    path.write_text("\n".join(parts))
    return path


def _streams() -> list[tuple[np.ndarray, bytes]]:
    return [
        (case.symbols, huffman.encode(case.symbols, huffman.build_code(case.symbols)))
        for case in CASES
    ]


def test_cases_cover_sizes_widths_and_the_16_bit_limit() -> None:
    sizes = [case.symbols.size for case in CASES]
    codes = [huffman.build_code(case.symbols) for case in CASES]
    assert len(CASES) >= 30 and min(sizes) == 1 and max(sizes) == 100_000
    assert max(code.max_length for code in codes) == huffman.MAX_CODE_LENGTH
    assert {len(code.symbols) for code in codes} >= {1, 3, 255}


def test_c_decoder_equals_input(
    pytestconfig: pytest.Config, tmp_path: Path, tables_source: Path
) -> None:
    gcc = _compiler("gcc", pytestconfig)
    library = tmp_path / "libajpq_huffman.so"
    sources = [str(DECODER), str(tables_source)]
    _build(
        [gcc, *WARNINGS, "-O2", "-fPIC", "-shared", f"-I{RUNTIME}", *sources, "-o", str(library)]
    )
    lib = ctypes.CDLL(str(library))
    lib.ajpq_test_table.restype = ctypes.c_void_p
    lib.ajpq_test_table.argtypes = [ctypes.c_uint32]
    lib.ajpq_huffman_validate.argtypes = [ctypes.c_void_p]
    lib.ajpq_huffman_decode.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_size_t,
        ctypes.c_void_p,
    ]
    equal, short = 0, []
    for index, (symbols, data) in enumerate(_streams()):
        table = lib.ajpq_test_table(index)
        assert lib.ajpq_huffman_validate(table) == 0
        out = np.full(symbols.size, 99, dtype=np.int8)
        result = lib.ajpq_huffman_decode(table, data, len(data), symbols.size, out.ctypes.data)
        equal += int(np.array_equal(out, symbols) and result == 0)
        # 64 more weights than the stream holds run past its padding: reported, never read
        more = np.full(symbols.size + 64, 99, dtype=np.int8)
        short.append(lib.ajpq_huffman_decode(table, data, len(data), more.size, more.ctypes.data))
    assert equal == len(CASES)
    assert short == [-2] * len(CASES)


def test_sanitized_c_decoder_equals_input(
    pytestconfig: pytest.Config, tmp_path: Path, tables_source: Path
) -> None:
    gcc = _compiler("gcc", pytestconfig)
    driver = tmp_path / "driver.c"
    driver.write_text(DRIVER)
    executable = tmp_path / "huffman_driver"
    flags = [*WARNINGS, "-O1", "-g", "-fno-omit-frame-pointer", *SANITIZE, f"-I{RUNTIME}"]
    _build([gcc, *flags, str(DECODER), str(tables_source), str(driver), "-o", str(executable)])
    streams = _streams()
    blob = [struct.pack("<I", len(streams))]
    trim = huffman.PAD_BYTES - READ_AHEAD_BYTES
    for index, (symbols, data) in enumerate(streams):
        data = data[: len(data) - trim]
        blob.append(struct.pack("<III", index, symbols.size, len(data)))
        blob += [data, symbols.astype(np.int8).tobytes()]
    cases = tmp_path / "cases.bin"
    cases.write_bytes(b"".join(blob))
    result = subprocess.run([str(executable), str(cases)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"case {k} equal 0 0" for k in range(len(CASES))]


def test_decoder_and_tables_build_for_cortex_m4(
    pytestconfig: pytest.Config, tmp_path: Path, tables_source: Path
) -> None:
    arm_gcc = _compiler("arm-none-eabi-gcc", pytestconfig)
    for source in (DECODER, tables_source):
        obj = tmp_path / f"{source.stem}.o"
        _build([arm_gcc, *M4, *WARNINGS, "-O2", f"-I{RUNTIME}", "-c", str(source), "-o", str(obj)])
    nm = shutil.which("arm-none-eabi-nm")
    if nm is not None:  # no libc, no malloc: the decoder is self-contained
        undefined = subprocess.run(
            [nm, "-u", str(tmp_path / "ajpq_huffman.o")], capture_output=True, text=True
        )
        assert undefined.stdout.split() == []
