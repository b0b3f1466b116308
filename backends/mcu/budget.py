"""The mcu backend's memory rules, each written once: kernel scratch sizes, the scratch cap,
the firmware's own RAM, the code-size estimate, the width biases are stored at, and the
RAM/flash check of the budget step.

``plan`` (which kernel a layer gets, how much scratch the model reserves), ``estimate`` (the
search's cheap cost) and ``compile`` (the budget step before linking) all read them from here.

Kernel scratch: ``conv_m4_scratch_bytes`` and ``linear_m4_scratch_bytes`` are the Python
mirror of ``ajpq_conv_m4_s8_get_buffer_size`` and ``ajpq_linear_m4_s8_get_buffer_size``
(firmware/kernels/); every other kernel asks for no scratch.
"""

from typing import TYPE_CHECKING

import numpy as np

from ajpq.boards import BoardSpec
from ajpq.errors import BudgetExceeded

if TYPE_CHECKING:
    from ajpq.backends.mcu.plan import Plan

ALIGN = 8  # arena slots and scratch buffers start on 8-byte boundaries
CODE_BYTES_ESTIMATE = 24 * 1024  # runtime, kernels, protocol server, startup (~16 KiB built)
# The server firmware's statics that do not grow with the model: the COBS rx/tx buffers and
# the request/reply frames (4 x ~520 B, AJPQ_FRAME_MAX_BODY 512), the text console's line
# buffer (1,101 B), the retry cache's key and the boot check's result, the port's timer
# state: 3,248 B linked for qemu-mps2-an386 and stm32f7 alike, + 96 B for alignment. The
# buffers that grow with the model: runtime_ram_bytes.
SERVER_RAM_BYTES = 3344
MIN_KERNEL_SCRATCH_CAP = 1024  # a board file that states no RAM still gets the M4 kernels
CONV_M4_REQUANT_BYTES = 16  # sizeof(channel_requant_t) in ajpq_conv_m4_s8.c
LAYER_TICK_BYTES = 8  # ajpq_model_layer_ticks + ajpq_model_decode_ticks, per layer
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def aligned(size: int) -> int:
    """``size`` rounded up to a multiple of ALIGN."""
    return (size + ALIGN - 1) // ALIGN * ALIGN


def narrow_bias(bias: np.ndarray) -> bool:
    """A layer's biases are stored in flash as int16 when every one fits (the run loop widens
    them to int32 in the weight scratch, after the decoded weights), else as int32."""
    return bool(np.all((bias >= INT16_MIN) & (bias <= INT16_MAX)))


def bias_scratch_offset(weight_count: int) -> int:
    """Where a layer's widened biases start in the weight scratch: after its weights."""
    return aligned(weight_count)


def weight_scratch_bytes(weight_count: int, bias: np.ndarray) -> int:
    """The weight scratch one layer needs: its decoded int8 weights, then its biases widened
    to int32 when they are stored narrow."""
    widened = 4 * bias.size if narrow_bias(bias) else 0
    return bias_scratch_offset(weight_count) + widened if widened else weight_count


def conv_m4_depth(taps: int) -> int:
    """``conv_depth`` of ajpq_conv_m4_s8.c: taps per output channel (in_channels x kh x kw)
    rounded up to a multiple of 4, the length of its weight rows and im2col columns."""
    return (taps + 3) // 4 * 4


def conv_m4_scratch_bytes(out_channels: int, taps: int) -> int:
    """``ajpq_conv_m4_s8_get_buffer_size``: the layer's weights and two im2col columns as
    int16, ``conv_m4_depth(taps)`` long, plus one requant record per output channel."""
    depth = conv_m4_depth(taps)
    return (out_channels + 2) * depth * 2 + CONV_M4_REQUANT_BYTES * out_channels


def linear_m4_scratch_bytes(in_features: int) -> int:
    """``ajpq_linear_m4_s8_get_buffer_size`` on a core with the DSP extension (Cortex-M4/M7):
    the input widened to int16, rounded down to a multiple of 4 features."""
    return in_features // 4 * 4 * 2


def kernel_scratch_bytes(kind: str, channels: int, taps: int) -> int:
    """Scratch the M4 kernel of a plan step of ``kind`` asks for, unaligned; ``taps`` is
    weights per output channel (in_features for linear). Other kernels ask for none."""
    if kind == "conv":
        return conv_m4_scratch_bytes(channels, taps)
    if kind == "linear":
        return linear_m4_scratch_bytes(taps)
    return 0


def kernel_scratch_cap(ram_bytes: int) -> int:
    """The most scratch one M4 kernel may ask for on a board with ``ram_bytes`` of RAM (an
    eighth of it); a layer that needs more runs the reference kernel (same numbers)."""
    return max(ram_bytes // 8, MIN_KERNEL_SCRATCH_CAP)


def runtime_ram_bytes(plan: "Plan") -> int:
    """RAM the server firmware takes beside the model's arena and scratch: its fixed statics,
    the uint8 input image, the int32 output copy and the per-layer tick counters."""
    output = plan.tensors[plan.output].elements
    return (
        SERVER_RAM_BYTES
        + plan.tensors[plan.input].elements
        + 4 * output
        + LAYER_TICK_BYTES * len(plan.steps)
    )


def model_ram_bytes(plan: "Plan") -> int:
    """The model's own RAM: activation arena, decoded-weight scratch, kernel scratch."""
    return plan.arena_bytes + plan.weight_scratch_bytes + plan.kernel_scratch_bytes


def ram_bytes(plan: "Plan", board: BoardSpec) -> int:
    """RAM the firmware needs on ``board``: model, runtime and the board's stack."""
    return model_ram_bytes(plan) + runtime_ram_bytes(plan) + board.stack_bytes


def flash_bytes(data_bytes: int) -> int:
    """Flash the firmware needs: the model's data arrays plus the code estimate."""
    return data_bytes + CODE_BYTES_ESTIMATE


def check_budget(board: BoardSpec, plan: "Plan", data_bytes: int) -> None:
    """BudgetExceeded when the model cannot fit ``board``'s RAM or flash (before linking)."""
    ram = ram_bytes(plan, board)
    if board.ram_bytes and ram > board.ram_bytes:
        raise BudgetExceeded(
            f"the model needs {ram:,} bytes of RAM (arena {plan.arena_bytes:,} + scratch "
            f"{plan.weight_scratch_bytes + plan.kernel_scratch_bytes:,} + runtime "
            f"{runtime_ram_bytes(plan):,} + stack {board.stack_bytes:,}) but {board.id} has "
            f"{board.ram_bytes:,}; prune more, lower the input size, or pick a board with more RAM"
        )
    flash = flash_bytes(data_bytes)
    if board.flash_bytes and flash > board.flash_bytes:
        raise BudgetExceeded(
            f"the model needs about {flash:,} bytes of flash ({data_bytes:,} of weights "
            f"and parameters + ~{CODE_BYTES_ESTIMATE:,} of code) but {board.id} has "
            f"{board.flash_bytes:,}; prune more or use fewer bits"
        )
