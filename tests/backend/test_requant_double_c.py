"""The C double-rounding requantization (``ajpq_requantize_double`` in
firmware/kernels/ajpq_requant.h, and ``ajpq_requantize_double_i32``, the M4 kernels' 32-bit
path of it) equals ``requantize_double`` of sdk/graph/requant.py, which the real TFLM
interpreter matches (tests/unit/backends/test_tflite_requant.py): on random accumulators,
multipliers and shifts, and on the ties where the two roundings part."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from ajpq.backends.mcu.host import FIRMWARE
from ajpq.graph.requant import requantize, requantize_double
from tests.backend.tools import need

DRIVER = r"""
#include <stdio.h>
#include "ajpq_requant.h"
int main(void)
{
    long long acc;
    int multiplier, shift;
    while (scanf("%lld %d %d", &acc, &multiplier, &shift) == 3) {
        int32_t wide = ajpq_requantize_double(acc, multiplier, shift, INT32_MIN, INT32_MAX);
        if (acc >= INT32_MIN && acc <= INT32_MAX) { /* the M4 kernels' 32-bit path agrees */
            int32_t narrow = ajpq_requantize_double_i32((int32_t)acc, multiplier, shift,
                                                        INT32_MIN, INT32_MAX);
            if (narrow != wide) {
                return 1;
            }
        }
        printf("%d\n", (int)wide);
    }
    return 0;
}
"""
FLAGS = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-Wconversion"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


def cases(rng: np.random.Generator, count: int) -> tuple[np.ndarray, ...]:
    """Accumulators whose acc * 2^max(31 - shift, 0) fits int32 (TFLite's assumption),
    multipliers in [2^30, 2^31) or 0, shifts 1..62; then exact ties (acc / 4 and acc / 2)."""
    shift = rng.integers(1, 63, count)
    limit = 2 ** (31 - np.maximum(31 - shift, 0)) - 1
    acc = (rng.uniform(-1, 1, count) * limit).astype(np.int64)
    multiplier = rng.integers(1 << 30, 1 << 31, count)
    multiplier[:10] = 0
    acc[10:20] = [-(2**31), 2**31 - 1] * 5  # the int32 extremes (shift >= 31 keeps them)
    shift[10:20] = np.maximum(shift[10:20], 31)
    ties = np.arange(-4000, 4000, dtype=np.int64)
    acc = np.concatenate([acc, ties, ties])
    multiplier = np.concatenate([multiplier, np.full(2 * ties.size, 1 << 30)])
    shift = np.concatenate([shift, np.full(ties.size, 32), np.full(ties.size, 31)])
    return acc, multiplier, shift


def test_c_double_rounding_equals_the_reference(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    need(request, "gcc")
    source, program = tmp_path / "driver.c", tmp_path / "driver"
    source.write_text(DRIVER)
    includes = [f"-I{FIRMWARE / 'include'}", f"-I{FIRMWARE / 'kernels'}"]
    command = ["gcc", *FLAGS, *SANITIZE, *includes, str(source), "-o", str(program)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    acc, multiplier, shift = cases(np.random.default_rng(0), 20_000)
    lines = "\n".join(f"{a} {m} {s}" for a, m, s in zip(acc, multiplier, shift, strict=True))
    result = subprocess.run([str(program)], input=lines, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    c_values = np.array(result.stdout.split(), dtype=np.int64)
    lo, hi = -(1 << 31), (1 << 31) - 1
    expected = requantize_double(acc[None, :], multiplier, shift, lo, hi).reshape(-1)
    single = requantize(acc[None, :], multiplier, shift, lo, hi).reshape(-1)
    assert c_values.size == acc.size == 36_000
    assert np.array_equal(c_values, expected)
    assert np.count_nonzero(single != expected) == 2175  # where the two roundings part
    at = {
        (int(a), int(s)): k for k, (a, s) in enumerate(zip(acc, shift, strict=True)) if k >= 20_000
    }
    # acc / 4: -2 -> -0.5 (single 0, double -1); 1 -> 0.25 (single 0, double 0.5 -> 1);
    # -6 -> -1.5 (single -1; double: -3 after the high multiply, then -1.5 -> -2)
    for key, single_value, double_value in [((-2, 32), 0, -1), ((1, 32), 0, 1), ((-6, 32), -1, -2)]:
        assert (single[at[key]], c_values[at[key]]) == (single_value, double_value)
