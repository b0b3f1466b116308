"""Canonical, length-limited Huffman coding of a layer's int8 weights (one code per tensor,
or per group of equal-bit-width channels: ``channel_groups``).

The mcu backend stores each weight tensor as a bit stream decoded at run time by
``firmware/runtime/ajpq_huffman.c``. This module builds the code (package-merge, so lengths
never pass ``MAX_CODE_LENGTH`` and the code is optimal under that limit), packs and unpacks
the stream (MSB first) and writes the C table the decoder reads. ``stored_weight_bytes`` is
the flash a whole graph's streams and tables take, the rule every budget reads.

Stream format (what ``encode`` returns): the codes of the symbols in order, most significant
bit first, zero bits up to a whole byte, then ``PAD_BYTES`` zero bytes. The decoder refills its
bit buffer two bytes at a time ahead of the codes it has used, so it may read up to 3 bytes past
the last code byte; the padding keeps those reads inside the stream.

C table layout (``c_table``), all in flash:

- ``lookup[1 << lookup_bits]`` (uint16): indexed by the next ``lookup_bits`` bits of the
  stream; ``(length << 8) | (symbol & 0xFF)`` for a code of at most ``lookup_bits`` bits, 0 for
  a prefix of a longer code. ``lookup_bits = min(LOOKUP_BITS, longest code)``.
- ``symbols[num_symbols]`` (int8) in canonical order (code length, then value).
- ``first_code``, ``count``, ``first_index`` (uint16, ``[max_length + 1]``): the canonical code
  of the first symbol of each length, how many symbols have that length and the position of the
  first one in ``symbols``. The decoder's fallback for codes longer than ``lookup_bits`` tries
  each longer length in turn.
"""

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ajpq.graph.hwgraph import HwGraph

MAX_CODE_LENGTH = 16
LOOKUP_BITS = 8  # first-level table width; see c_table
PAD_BYTES = 4  # zero bytes after the stream; must equal AJPQ_HUFFMAN_PAD_BYTES
SYMBOL_MIN = -128
SYMBOL_MAX = 127
_C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class HuffmanError(ValueError):
    """A symbol array, a code or a stream that the Huffman coder cannot handle."""


@dataclass(frozen=True)
class HuffmanCode:
    """A canonical prefix code: ``symbols`` sorted by (length, value), ``lengths`` aligned."""

    symbols: tuple[int, ...]
    lengths: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.symbols or len(self.symbols) != len(self.lengths):
            raise HuffmanError(
                f"a Huffman code needs one length per symbol and at least one symbol; got "
                f"{len(self.symbols)} symbols and {len(self.lengths)} lengths"
            )
        if any(not SYMBOL_MIN <= s <= SYMBOL_MAX for s in self.symbols):
            raise HuffmanError(f"symbols must be int8 values in {SYMBOL_MIN}..{SYMBOL_MAX}")
        if any(not 1 <= n <= MAX_CODE_LENGTH for n in self.lengths):
            raise HuffmanError(f"code lengths must lie in 1..{MAX_CODE_LENGTH}")
        order = list(zip(self.lengths, self.symbols, strict=True))
        if order != sorted(order) or len(set(self.symbols)) != len(self.symbols):
            raise HuffmanError("symbols must be distinct and sorted by (code length, value)")
        if kraft_sum(self) > 1.0:
            raise HuffmanError(f"code lengths {self.lengths} break the Kraft inequality")

    @property
    def max_length(self) -> int:
        return self.lengths[-1]

    def codes(self) -> tuple[int, ...]:
        """The canonical code word of each symbol (the low ``length`` bits, MSB first)."""
        words = []
        value = 0
        previous = self.lengths[0]
        for length in self.lengths:
            value <<= length - previous
            words.append(value)
            value += 1
            previous = length
        return tuple(words)


def kraft_sum(code: HuffmanCode) -> float:
    return sum(2.0**-length for length in code.lengths)


def _as_symbols(symbols: np.ndarray) -> np.ndarray:
    flat = np.asarray(symbols).ravel()
    if flat.size and not np.issubdtype(flat.dtype, np.integer):
        raise HuffmanError(f"weights must be integers to be Huffman coded; got {flat.dtype}")
    if flat.size and (flat.min() < SYMBOL_MIN or flat.max() > SYMBOL_MAX):
        raise HuffmanError(f"weights must lie in {SYMBOL_MIN}..{SYMBOL_MAX} (int8)")
    return flat.astype(np.int64)


def _package_merge(weights: list[int], max_length: int) -> list[int]:
    """Optimal code lengths, each at most ``max_length``, for ``weights`` (>= 2 of them)."""
    n = len(weights)
    leaves = sorted(
        ((w, np.eye(1, n, i, dtype=np.int64)[0]) for i, w in enumerate(weights)),
        key=lambda item: item[0],
    )
    current = leaves
    for _ in range(max_length - 1):
        packages = [
            (a[0] + b[0], a[1] + b[1]) for a, b in zip(current[0::2], current[1::2], strict=False)
        ]
        current = list(heapq.merge(leaves, packages, key=lambda item: item[0]))
    lengths = sum((counts for _, counts in current[: 2 * n - 2]), np.zeros(n, dtype=np.int64))
    return [int(length) for length in lengths]


def build_code(symbols: np.ndarray) -> HuffmanCode:
    """The optimal canonical code (lengths <= MAX_CODE_LENGTH) for the symbols' frequencies."""
    flat = _as_symbols(symbols)
    if flat.size == 0:
        raise HuffmanError("cannot build a Huffman code for an empty weight tensor")
    values, counts = np.unique(flat, return_counts=True)
    if values.size == 1:
        lengths = [1]
    else:
        lengths = _package_merge([int(c) for c in counts], MAX_CODE_LENGTH)
    order = sorted(zip(lengths, (int(v) for v in values), strict=True))
    return HuffmanCode(
        symbols=tuple(s for _, s in order), lengths=tuple(length for length, _ in order)
    )


def _bit_strings(code: HuffmanCode) -> dict[int, str]:
    return {
        symbol: format(word, f"0{length}b")
        for symbol, length, word in zip(code.symbols, code.lengths, code.codes(), strict=True)
    }


def encode(symbols: np.ndarray, code: HuffmanCode) -> bytes:
    """The MSB-first stream of ``symbols``, zero-padded to a byte, plus PAD_BYTES zero bytes."""
    flat = _as_symbols(symbols)
    words = _bit_strings(code)
    missing = set(np.unique(flat).tolist()) - set(words)
    if missing:
        raise HuffmanError(f"symbols {sorted(missing)} have no code; build the code from them")
    bits = "".join(words[s] for s in flat.tolist())
    bits += "0" * (-len(bits) % 8)
    body = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
    return body + bytes(PAD_BYTES)


def _bits(data: bytes) -> Iterator[int]:
    for byte in data:
        for shift in range(7, -1, -1):
            yield (byte >> shift) & 1


def decode(data: bytes, count: int, code: HuffmanCode) -> np.ndarray:
    """The first ``count`` symbols of ``data`` (reference decoder, one bit at a time)."""
    by_word = {
        (length, word): symbol
        for symbol, length, word in zip(code.symbols, code.lengths, code.codes(), strict=True)
    }
    out = np.empty(count, dtype=np.int8)
    bits = _bits(data)
    for i in range(count):
        word, length = 0, 0
        while (length, word) not in by_word:
            if length == code.max_length:
                raise HuffmanError(f"symbol {i} of the stream is not a code word")
            bit = next(bits, None)
            if bit is None:
                raise HuffmanError(f"the stream ends before symbol {i} of {count}")
            word, length = (word << 1) | bit, length + 1
        out[i] = by_word[(length, word)]
    return out


def entropy_bits(symbols: np.ndarray) -> float:
    """Shannon entropy of the symbols' empirical distribution times their count, in bits."""
    flat = _as_symbols(symbols)
    if flat.size == 0:
        return 0.0
    _, counts = np.unique(flat, return_counts=True)
    return float(-(counts * np.log2(counts / flat.size)).sum())


def encoded_bits(symbols: np.ndarray, code: HuffmanCode) -> int:
    """Bits of the codes of ``symbols`` (without the byte padding and PAD_BYTES)."""
    flat = _as_symbols(symbols)
    length_of = dict(zip(code.symbols, code.lengths, strict=True))
    values, counts = np.unique(flat, return_counts=True)
    missing = set(values.tolist()) - set(length_of)
    if missing:
        raise HuffmanError(f"symbols {sorted(missing)} have no code; build the code from them")
    return sum(length_of[int(v)] * int(c) for v, c in zip(values, counts, strict=True))


def lookup_table(code: HuffmanCode, lookup_bits: int = LOOKUP_BITS) -> list[int]:
    """The decoder's first-level table: ``(length << 8) | (symbol & 0xFF)``, 0 = longer code."""
    bits = min(lookup_bits, code.max_length)
    table = [0] * (1 << bits)
    for symbol, length, word in zip(code.symbols, code.lengths, code.codes(), strict=True):
        if length <= bits:
            start = word << (bits - length)
            entry = (length << 8) | (symbol & 0xFF)
            table[start : start + (1 << (bits - length))] = [entry] * (1 << (bits - length))
    return table


def canonical_arrays(code: HuffmanCode) -> tuple[list[int], list[int], list[int]]:
    """``first_code``, ``count`` and ``first_index`` per code length 0..max_length."""
    first_code = [0] * (code.max_length + 1)
    count = [0] * (code.max_length + 1)
    first_index = [0] * (code.max_length + 1)
    for index, (length, word) in enumerate(zip(code.lengths, code.codes(), strict=True)):
        if count[length] == 0:
            first_code[length], first_index[length] = word, index
        count[length] += 1
    return first_code, count, first_index


def table_bytes(code: HuffmanCode, lookup_bits: int = LOOKUP_BITS) -> int:
    """Flash bytes of ``c_table``'s arrays plus its struct (32-bit pointers)."""
    header = 24
    per_length = 3 * 2 * (code.max_length + 1)
    return header + 2 * len(lookup_table(code, lookup_bits)) + len(code.symbols) + per_length


def _c_array(values: list[int], per_line: int, width: int) -> str:
    rows = [
        ", ".join(f"{v:>{width}}" for v in values[i : i + per_line])
        for i in range(0, len(values), per_line)
    ]
    return "\n".join(f"    {row}," for row in rows)


def table_arrays(
    code: HuffmanCode, lookup_bits: int = LOOKUP_BITS
) -> list[tuple[str, str, list[int]]]:
    """(name suffix, C type, values) of the five arrays of ``c_table``, in flash order."""
    first_code, count, first_index = canonical_arrays(code)
    return [
        ("lookup", "uint16_t", lookup_table(code, lookup_bits)),
        ("symbols", "int8_t", list(code.symbols)),
        ("first_code", "uint16_t", first_code),
        ("count", "uint16_t", count),
        ("first_index", "uint16_t", first_index),
    ]


def table_shape(code: HuffmanCode, lookup_bits: int = LOOKUP_BITS) -> bytes:
    """The struct's scalars as the device's weights CRC reads them (ajpq_verify.c):
    num_symbols (u16 little-endian), max_length, lookup_bits."""
    bits = min(lookup_bits, code.max_length)
    return len(code.symbols).to_bytes(2, "little") + bytes([code.max_length, bits])


def _c_table_array(name: str, ctype: str, values: list[int]) -> str:
    if name.endswith("_lookup"):
        rows = _c_array([f"0x{v:04x}" for v in values], 8, 6)
    else:
        rows = _c_array(values, *((12, 4) if ctype == "int8_t" else (9, 5)))
    return f"static const {ctype} {name}[{len(values)}] = {{\n{rows}\n}};\n"


def c_table(name: str, code: HuffmanCode, lookup_bits: int = LOOKUP_BITS) -> str:
    """C source defining ``const ajpq_huffman_table_t <name>`` and its static arrays.

    The text needs ``#include "ajpq_huffman.h"`` before it (write that once per file).
    """
    if _C_IDENTIFIER.fullmatch(name) is None:
        raise HuffmanError(f"{name!r} is not a C identifier; name the table like a C variable")
    if not 1 <= lookup_bits <= MAX_CODE_LENGTH:
        raise HuffmanError(f"lookup_bits must lie in 1..{MAX_CODE_LENGTH}; got {lookup_bits}")
    arrays = table_arrays(code, lookup_bits)
    bits = min(lookup_bits, code.max_length)
    pointers = ", ".join(f"{name}_{suffix}" for suffix, _, _ in arrays)
    return (
        "".join(_c_table_array(f"{name}_{suffix}", ctype, v) for suffix, ctype, v in arrays)
        + f"""const ajpq_huffman_table_t {name} = {{
    {len(code.symbols)}u, {code.max_length}u, {bits}u,
    {pointers},
}};
"""
    )


# ---- a graph's weights as the mcu backend stores them -------------------------------------
def stream_bytes(symbols: np.ndarray, code: HuffmanCode) -> int:
    """Bytes of ``encode(symbols, code)`` (codes, byte padding and PAD_BYTES), uncoded."""
    return (encoded_bits(symbols, code) + 7) // 8 + PAD_BYTES


def _coded_bytes(weight: np.ndarray, groups: list[tuple[int, int]]) -> int:
    """Code bits rounded to bytes plus table bytes of ``weight`` coded per group: what the
    choice between one code and one code per bit-width group compares."""
    total = 0
    for first, count in groups:
        values = weight[first : first + count].ravel()
        code = build_code(values)
        total += (encoded_bits(values, code) + 7) // 8 + table_bytes(code)
    return total


def channel_groups(
    weight: np.ndarray, bit_groups: np.ndarray | None, group_codes: bool = True
) -> list[tuple[int, int]]:
    """(first output channel, channel count) of each separately coded group of a layer's
    ``weight``: one code per bit-width group (``bit_groups`` rows ``[bits, first, count]``,
    from ``sort_channels_by_bits``) when that costs fewer bytes, else one for the layer."""
    whole = [(0, int(weight.shape[0]))]
    if not group_codes or bit_groups is None or len(bit_groups) < 2:
        return whole
    split = [(int(first), int(count)) for _, first, count in bit_groups]
    values = np.asarray(weight).astype(np.int64)
    return split if _coded_bytes(values, split) < _coded_bytes(values, whole) else whole


def table_bytes_bound(bits: int) -> int:
    """The most ``table_bytes`` can be for any code of ``bits``-bit weights: at most 2^bits
    symbols, so lengths of at most min(MAX_CODE_LENGTH, 2^bits - 1)."""
    symbols = 1 << bits
    longest = max(1, min(MAX_CODE_LENGTH, symbols - 1))
    return 24 + 2 * (1 << min(LOOKUP_BITS, longest)) + symbols + 3 * 2 * (longest + 1)


def stored_bytes_bound(per_channel: int, weight_bits: np.ndarray, group_codes: bool = True) -> int:
    """An upper bound on a layer's streams and tables as ``compile`` stores them, from its
    shape and bit-widths alone (no weights): a Huffman code is never longer than the fixed
    width, and ``channel_groups`` keeps the cheaper of one code and one per bit-width."""
    bits = np.asarray(weight_bits, dtype=np.int64)

    def coded(count: int, width: int) -> int:
        return -(-count * per_channel * width // 8) + PAD_BYTES + table_bytes_bound(width)

    whole = coded(bits.size, int(bits.max()))
    widths = np.unique(bits)
    if not group_codes or widths.size < 2:
        return whole
    return min(whole, sum(coded(int((bits == b).sum()), int(b)) for b in widths))


def stored_weight_bytes(hw: "HwGraph", group_codes: bool = True) -> int:
    """Flash bytes of ``hw``'s Huffman weight streams and code tables exactly as ``compile``
    emits them (channels sorted by bit-width, one code per chosen group, PAD_BYTES per
    stream); biases and requantization parameters are not included."""
    from ajpq.graph.sort_channels_by_bits import sort_channels_by_bits

    graph = sort_channels_by_bits(hw) if group_codes else hw
    return sum(
        layer_stored_bytes(node.arrays["weight"], node.arrays.get("bit_groups"), group_codes)
        for node in graph.nodes
        if node.op in ("conv", "linear")
    )


def layer_stored_bytes(
    weight: np.ndarray, bit_groups: np.ndarray | None, group_codes: bool = True
) -> int:
    """Flash bytes of one layer's streams and code tables (``channel_groups``' codes)."""
    weight = np.asarray(weight).astype(np.int64)
    total = 0
    for first, count in channel_groups(weight, bit_groups, group_codes):
        values = weight[first : first + count].ravel()
        code = build_code(values)
        total += stream_bytes(values, code) + table_bytes(code)
    return total
