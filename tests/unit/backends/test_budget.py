"""The mcu backend's memory rules (backends/mcu/budget.py), without a compiler."""

from ajpq.backends.mcu import budget


def test_conv_scratch_is_weights_columns_and_requant() -> None:
    # 27 taps padded to 28: 16 weight rows + 2 columns of int16, 16 bytes of requant per row
    # (the number tests/backend/test_kernels_m4.py reads from the C get_buffer_size)
    assert budget.conv_m4_depth(27) == 28
    assert budget.conv_m4_scratch_bytes(16, 27) == (16 + 2) * 28 * 2 + 16 * 16 == 1264
    assert budget.kernel_scratch_bytes("conv", 16, 27) == 1264


def test_linear_scratch_widens_whole_groups_of_four_inputs() -> None:
    assert budget.linear_m4_scratch_bytes(30) == 28 * 2
    assert budget.kernel_scratch_bytes("linear", 10, 30) == 56


def test_other_kernels_ask_for_no_scratch() -> None:
    for kind in ("dwconv", "maxpool", "avgpool", "add", "concat", "reorg", "flatten"):
        assert budget.kernel_scratch_bytes(kind, 16, 9) == 0


def test_scratch_cap_is_an_eighth_of_ram_with_a_floor() -> None:
    assert budget.kernel_scratch_cap(320 * 1024) == 40 * 1024
    assert budget.kernel_scratch_cap(0) == budget.MIN_KERNEL_SCRATCH_CAP == 1024


def test_flash_is_data_plus_the_code_estimate() -> None:
    assert budget.flash_bytes(1000) == 1000 + 24 * 1024
