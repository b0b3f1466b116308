"""The boot check's CRC (firmware/runtime/ajpq_verify.c) equals the one ajpq writes into
ajpq_model.h (backends/mcu/integrity.py), on models with every kind of emitted array: built
by gcc on the host, no board needed."""

import subprocess
from pathlib import Path

import pytest
import torch

from ajpq.backends.mcu.host import FIRMWARE
from ajpq.backends.mcu.plan import plan
from ajpq.backends.mcu.sources import write_sources
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.lower import lower
from ajpq.models import skynet
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize
from tests.backend.tools import need
from tests.models import resnet_tiny

PROTO, RUNTIME = FIRMWARE / "proto", FIRMWARE / "runtime"
MAIN = r"""
#include <stdio.h>
#include "ajpq_crc.h"
#include "ajpq_model.h"
#include "ajpq_verify.h"
int main(void)
{
    uint32_t actual = 0;
    uint32_t result = ajpq_model_verify(AJPQ_MODEL_WEIGHTS_CRC, &actual);
    printf("%08x %08x %u %08x\n", (unsigned)AJPQ_MODEL_WEIGHTS_CRC, (unsigned)actual,
           (unsigned)result, (unsigned)ajpq_crc32_update(0u, "123456789", 9u));
    return 0;
}
"""


def graphs() -> dict[str, HwGraph]:
    torch.manual_seed(0)
    detector = skynet(0.125, (32, 64)).eval()
    classifier = resnet_tiny(input_size=(16, 16)).eval()
    two_bit = Policy.from_sparsity(detector, 0.0, bits=2)  # three symbols per code
    return {
        "skynet-mixed": lower(quantize(detector, Policy.random(detector, seed=7))),
        "skynet-2bit": lower(quantize(detector, two_bit)),
        "resnet-add-avgpool-linear": lower(
            quantize(
                classifier,
                Policy.random(classifier, seed=2, input_size=(16, 16)),
                input_size=(16, 16),
            )
        ),
    }


@pytest.mark.parametrize("name", ["skynet-mixed", "skynet-2bit", "resnet-add-avgpool-linear"])
def test_the_device_computes_the_crc_ajpq_wrote(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    need(request, "gcc")
    graph = graphs()[name]
    src = tmp_path / "src"
    _, _, crc = write_sources(graph, plan(graph, 1 << 16), src)
    (tmp_path / "main.c").write_text(MAIN)
    sources = [src / "ajpq_weights.c", RUNTIME / "ajpq_verify.c", RUNTIME / "ajpq_huffman.c"]
    program = tmp_path / "verify"
    flags = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror"]
    includes = [src, FIRMWARE / "include", RUNTIME, PROTO]
    command = ["gcc", *flags, *(f"-I{d}" for d in includes), str(tmp_path / "main.c")]
    command += [*map(str, sources), str(PROTO / "ajpq_crc.c"), "-o", str(program)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    built, computed, result, check = subprocess.run(
        [str(program)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert (built, computed, result, check) == (f"{crc:08x}", f"{crc:08x}", "0", "cbf43926")
