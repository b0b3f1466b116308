"""The canonical Huffman coder of the mcu backend (backends/mcu/huffman.py), in pure Python."""

import heapq

import numpy as np
import pytest

from ajpq.backends.mcu import huffman


def gaussian_layer(
    rng: np.random.Generator, size: int, bit_widths: int | np.ndarray, per_channel: int = 512
) -> np.ndarray:
    """Per-channel max-abs quantized Gaussian weights, as Brevitas' per-channel scaling gives."""
    channels = max(1, size // per_channel)
    assert size % channels == 0, "a layer has whole channels"
    weights = rng.normal(size=(channels, size // channels))
    widths = np.broadcast_to(np.asarray(bit_widths).reshape(-1, 1), (channels, 1))
    qmax = 2.0 ** (widths - 1) - 1
    scale = np.abs(weights).max(axis=1, keepdims=True) / qmax
    return np.clip(np.round(weights / scale), -qmax, qmax).astype(np.int8).ravel()


def unlimited_huffman_bits(symbols: np.ndarray) -> int:
    """Cost of a textbook (not length-limited) Huffman code: the sum of its merge weights."""
    _, counts = np.unique(symbols, return_counts=True)
    heap = [int(c) for c in counts]
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        total += merged
        heapq.heappush(heap, merged)
    return total


def layers() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        np.array([5], dtype=np.int8),
        np.full(1000, -3, dtype=np.int8),
        np.array([1, -1], dtype=np.int8),
        rng.integers(-127, 128, 5000).astype(np.int8),
        np.arange(-128, 127, dtype=np.int8),  # 255 symbols, uniform
        np.repeat(np.arange(-127, 128), np.arange(1, 256)).astype(np.int8),  # 255, skewed
        (rng.geometric(0.5, 3000) * rng.choice([-1, 1], 3000)).clip(-127, 127).astype(np.int8),
        gaussian_layer(rng, 4096, 2),
        gaussian_layer(rng, 8192, 8),
        gaussian_layer(rng, 8192, rng.integers(2, 9, 8192 // 512)),
    ]


@pytest.mark.parametrize("symbols", layers(), ids=lambda s: f"{s.size}x{len(np.unique(s))}")
def test_round_trip_is_exact(symbols: np.ndarray) -> None:
    code = huffman.build_code(symbols)
    data = huffman.encode(symbols, code)
    bits = huffman.encoded_bits(symbols, code)
    assert len(data) == (bits + 7) // 8 + huffman.PAD_BYTES
    assert data[-huffman.PAD_BYTES :] == bytes(huffman.PAD_BYTES)
    np.testing.assert_array_equal(huffman.decode(data, symbols.size, code), symbols)


@pytest.mark.parametrize("symbols", layers(), ids=lambda s: f"{s.size}x{len(np.unique(s))}")
def test_code_is_canonical_prefix_free_and_optimal(symbols: np.ndarray) -> None:
    code = huffman.build_code(symbols)
    assert sorted(code.symbols) == np.unique(symbols).tolist()
    pairs = list(zip(code.lengths, code.symbols, strict=True))
    assert pairs == sorted(pairs)
    assert max(code.lengths) <= huffman.MAX_CODE_LENGTH
    assert huffman.kraft_sum(code) <= 1.0
    words = [format(w, f"0{n}b") for w, n in zip(code.codes(), code.lengths, strict=True)]
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    if len(code.symbols) == 1:
        assert code.lengths == (1,)
    else:  # optimal codes are complete, and as short as an unlimited Huffman code
        assert huffman.kraft_sum(code) == 1.0
        assert huffman.encoded_bits(symbols, code) == unlimited_huffman_bits(symbols)


def test_lengths_are_limited_to_16_bits() -> None:
    # Fibonacci frequencies give a textbook Huffman code 19 bits deep.
    fibonacci = [1, 1]
    while len(fibonacci) < 20:
        fibonacci.append(fibonacci[-1] + fibonacci[-2])
    symbols = np.repeat(np.arange(20, dtype=np.int8), fibonacci)
    code = huffman.build_code(symbols)
    assert code.max_length == huffman.MAX_CODE_LENGTH
    assert huffman.kraft_sum(code) == 1.0
    assert huffman.encoded_bits(symbols, code) > unlimited_huffman_bits(symbols)
    np.testing.assert_array_equal(
        huffman.decode(huffman.encode(symbols, code), symbols.size, code), symbols
    )


def test_4bit_gaussian_layer_is_within_2_percent_of_entropy() -> None:
    symbols = gaussian_layer(np.random.default_rng(0), 16384, 4)
    code = huffman.build_code(symbols)
    entropy = huffman.entropy_bits(symbols)
    bits = huffman.encoded_bits(symbols, code)
    assert entropy / symbols.size == pytest.approx(3.1810, abs=1e-4)
    assert bits / symbols.size == pytest.approx(3.2247, abs=1e-4)
    assert entropy <= bits <= entropy + symbols.size
    assert bits / entropy == pytest.approx(1.0137, abs=1e-4)  # <= 1.02


def test_skewed_2bit_layer_pays_huffman_redundancy() -> None:
    # Max-abs scaled 2-bit weights are mostly 0: entropy < 1 bit, Huffman needs >= 1 bit each.
    symbols = gaussian_layer(np.random.default_rng(0), 16384, 2)
    bits = huffman.encoded_bits(symbols, huffman.build_code(symbols))
    entropy = huffman.entropy_bits(symbols)
    assert entropy <= bits <= entropy + symbols.size
    assert bits / entropy > 1.5


def test_lookup_table_entries() -> None:
    symbols = np.repeat(np.array([0, 1, -1, -128], dtype=np.int8), [8, 4, 2, 2])
    code = huffman.build_code(symbols)
    assert code.symbols == (0, 1, -128, -1) and code.lengths == (1, 2, 3, 3)
    assert huffman.lookup_table(code) == [0x100] * 4 + [0x201] * 2 + [0x380, 0x3FF]
    assert huffman.lookup_table(code, lookup_bits=2) == [0x100, 0x100, 0x201, 0]
    assert huffman.canonical_arrays(code) == ([0, 0, 2, 6], [0, 1, 1, 2], [0, 0, 1, 2])


def test_c_table_text() -> None:
    code = huffman.build_code(np.array([3, 3, -2], dtype=np.int8))
    text = huffman.c_table("layer0_weights", code)
    assert "static const uint16_t layer0_weights_lookup[2] = {" in text
    assert "const ajpq_huffman_table_t layer0_weights = {" in text
    with pytest.raises(huffman.HuffmanError, match="C identifier"):
        huffman.c_table("0bad", code)


def test_errors_name_the_problem() -> None:
    code = huffman.build_code(np.array([1, 2], dtype=np.int8))
    with pytest.raises(huffman.HuffmanError, match=r"symbols \[3\] have no code"):
        huffman.encode(np.array([3], dtype=np.int8), code)
    with pytest.raises(huffman.HuffmanError, match="empty"):
        huffman.build_code(np.array([], dtype=np.int8))
    with pytest.raises(huffman.HuffmanError, match="int8"):
        huffman.build_code(np.array([300]))
    with pytest.raises(huffman.HuffmanError, match="ends before symbol 8"):
        huffman.decode(b"\x00", 9, code)
    with pytest.raises(huffman.HuffmanError, match="Kraft"):
        huffman.HuffmanCode(symbols=(0, 1, 2), lengths=(1, 1, 1))


# ---- what a layer and a graph take in flash ----------------------------------------------
def test_stream_bytes_are_the_length_of_the_encoded_stream() -> None:
    values = gaussian_layer(np.random.default_rng(5), 1536, 4)
    code = huffman.build_code(values)
    assert huffman.stream_bytes(values, code) == len(huffman.encode(values, code))


def test_channel_groups_split_only_when_that_is_smaller() -> None:
    rng = np.random.default_rng(6)
    eight = gaussian_layer(rng, 8 * 512, 8).reshape(8, 512)
    two = gaussian_layer(rng, 8 * 512, 2).reshape(8, 512)
    weight = np.concatenate([eight, two]).astype(np.int64)
    groups = np.array([[8, 0, 8], [2, 8, 8]])
    assert huffman.channel_groups(weight, groups) == [(0, 8), (8, 8)]
    assert huffman.channel_groups(weight, groups, group_codes=False) == [(0, 16)]
    assert huffman.channel_groups(weight, None) == [(0, 16)]
    alike = np.concatenate([eight, gaussian_layer(rng, 8 * 512, 8).reshape(8, 512)])
    # both groups drawn alike: a second code table costs more than it saves
    assert huffman.channel_groups(alike.astype(np.int64), groups) == [(0, 16)]


def test_stored_weight_bytes_of_a_uniform_graph_is_one_code_per_layer() -> None:
    """One code per layer (no width groups to split): streams with PAD_BYTES + tables, which
    is PAD_BYTES per layer more than the codes' bytes + tables."""
    import torch

    from ajpq.graph.lower import lower
    from ajpq.models import skynet
    from ajpq.quant.policy import Policy
    from ajpq.quant.quantize import quantize

    torch.manual_seed(0)
    model = skynet(0.125, (32, 64)).eval()
    graph = lower(quantize(model, Policy.from_sparsity(model, 0.5, bits=4)))
    layers = [
        n.arrays["weight"].astype(np.int64).ravel()
        for n in graph.nodes
        if n.op in ("conv", "linear")
    ]
    codes = [huffman.build_code(values) for values in layers]
    unpadded = sum(
        (huffman.encoded_bits(v, c) + 7) // 8 + huffman.table_bytes(c)
        for v, c in zip(layers, codes, strict=True)
    )
    stored = huffman.stored_weight_bytes(graph)
    assert stored == huffman.stored_weight_bytes(graph, group_codes=False)
    assert stored == unpadded + huffman.PAD_BYTES * len(layers)


@pytest.mark.parametrize("bits", [2, 3, 4, 7, 8])
def test_table_bytes_bound_is_reached_by_the_deepest_full_code(bits: int) -> None:
    """Every b-bit symbol present; Fibonacci counts over up to 18 of them on top of a block of
    equal counts make the deepest code (lengths 2^b - 1, capped at 16)."""
    symbols = 1 << bits
    fibonacci = [1, 1]
    while len(fibonacci) < min(symbols, 18):
        fibonacci.append(fibonacci[-1] + fibonacci[-2])
    ones = symbols - len(fibonacci)
    counts = [1] * ones + [max(1, ones) * f for f in fibonacci]
    values = np.arange(-(symbols // 2), symbols // 2)
    code = huffman.build_code(np.repeat(values, counts).astype(np.int8))
    assert code.max_length == min(huffman.MAX_CODE_LENGTH, symbols - 1)
    assert huffman.table_bytes(code) == huffman.table_bytes_bound(bits)


def width_groups(bits: np.ndarray) -> np.ndarray:
    """``bit_groups`` rows [bits, first, count] of channels sorted by width."""
    widths, counts = np.unique(bits, return_counts=True)
    firsts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.stack([widths, firsts, counts], axis=1)


@pytest.mark.parametrize("group_codes", [True, False])
def test_stored_bytes_bound_holds_for_gaussian_and_uniform_weights(group_codes: bool) -> None:
    rng = np.random.default_rng(8)
    per_channel = 72
    for _ in range(20):
        bits = np.sort(rng.integers(2, 9, size=int(rng.integers(1, 24))))
        if rng.random() < 0.5:
            weight = gaussian_layer(rng, bits.size * per_channel, bits, per_channel)
        else:  # every value equally likely: Huffman saves nothing on the fixed width
            high = (1 << (bits - 1)).reshape(-1, 1)
            weight = rng.integers(-high, high, size=(bits.size, per_channel))
        weight = weight.reshape(bits.size, per_channel).astype(np.int64)
        stored = huffman.layer_stored_bytes(weight, width_groups(bits), group_codes)
        assert stored <= huffman.stored_bytes_bound(per_channel, bits, group_codes)
