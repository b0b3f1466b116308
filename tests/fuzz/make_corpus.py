"""Write the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from the Python
side: real frames of every command (ajpq.boards.protocol), real EEMBC text commands, real
Huffman codes and streams (ajpq.backends.mcu.huffman), and the damaged tables that made the
decoder read out of bounds or shift by 32 or more before it validated its tables (kept as
regression inputs: every fuzz run executes them first).

    .venv/bin/python -m tests.fuzz.make_corpus      # rewrites the seeds, deterministically
"""

import struct
from pathlib import Path

import numpy as np

from ajpq.backends.mcu import huffman
from ajpq.boards.protocol import (
    CMD_INFO,
    CMD_LOAD_INPUT,
    CMD_QUIT,
    CMD_READ_LAYERS,
    CMD_READ_OUTPUT,
    CMD_RUN,
    Frame,
)

CORPUS = Path(__file__).parent / "corpus"
REQUESTS = [
    Frame(1, CMD_INFO),
    Frame(2, CMD_LOAD_INPUT, struct.pack("<I", 0) + bytes(range(64))),
    Frame(3, CMD_LOAD_INPUT, struct.pack("<I", 60) + bytes(8)),  # past the end: refused
    Frame(4, CMD_RUN, struct.pack("<HH", 2, 1)),
    Frame(5, CMD_READ_OUTPUT, struct.pack("<IH", 0, 16)),
    Frame(6, CMD_READ_LAYERS, struct.pack("<HH", 0, 3)),
    Frame(7, 0x7F),  # no request: answered with cmd 0x80
    Frame(8, CMD_QUIT),
]
TEXT = [b"name", b"profile", b"db load 4", b"db 0a0B0c0d", b"infer 2 1", b"db 0g", b"infer 0"]


def server_seeds() -> dict[str, bytes]:
    wire = b"".join(frame.encode(max_body=512) for frame in REQUESTS)
    records = b"".join(
        bytes([len(frame.body), frame.seq, frame.cmd]) + frame.body for frame in REQUESTS
    )
    text = b"\n".join(TEXT)
    return {
        "raw-frames": b"\x00" + wire,
        "raw-text": b"\x00" + text.replace(b"\n", b"%") + b"%",
        "records": b"\x01" + records,
        "records-corrupt-flash": b"\x05" + records,
        "records-short-stream": b"\x09" + records,
        "text": b"\x02" + text,
        "retry": b"\x01" + records[: 3 + len(REQUESTS[0].body)] * 2,
    }


def text_seeds() -> dict[str, bytes]:
    return {"commands": b"\x02" + b"\n".join(TEXT), "corrupt-flash": b"\x06" + b"\n".join(TEXT)}


def cobs_seeds() -> dict[str, bytes]:
    return {f"frame-{frame.seq}": frame.encode(max_body=512)[1:-1] for frame in REQUESTS}


def weights(seed: int, size: int, bits: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=size)
    qmax = 2 ** (bits - 1) - 1
    return np.clip(np.round(values / np.abs(values).max() * qmax), -qmax, qmax).astype(np.int8)


def stream_seed(layer: np.ndarray, message: np.ndarray) -> bytes:
    """fuzz_huffman_stream's input: the real code's lengths, a message, the real stream."""
    code = huffman.build_code(layer)
    lengths = bytes(length - 1 for length in code.lengths)
    head = bytes([len(code.symbols) - 1, huffman.LOOKUP_BITS - 1])
    return head + lengths + message.astype(np.uint8).tobytes() + huffman.encode(layer, code)


def table_seed(layer: np.ndarray, **damage: int) -> bytes:
    """fuzz_huffman_table's input: a real table (fields changed by ``damage``) and stream."""
    code = huffman.build_code(layer)
    arrays = {suffix: list(values) for suffix, _, values in huffman.table_arrays(code)}
    fields = {
        "num_symbols": len(code.symbols),
        "max_length": code.max_length,
        "lookup_bits": min(huffman.LOOKUP_BITS, code.max_length),
        "count": layer.size,
    }
    fields.update({k: v for k, v in damage.items() if k in fields})
    for key in ("first_code", "count", "first_index"):
        arrays[key] += [0] * (fields["max_length"] + 1 - len(arrays[key]))
    if "first_index_at" in damage:
        arrays["first_index"][damage["first_index_at"]] = 250
    if damage.get("no_long_codes"):
        long_lengths = range(huffman.LOOKUP_BITS + 1, len(arrays["count"]))
        for length in long_lengths:
            arrays["count"][length] = 0
    if "lookup_entry" in damage:
        arrays["lookup"][0] = damage["lookup_entry"]
    head = struct.pack("<HBBH", *fields.values())
    body = struct.pack(f"<{len(arrays['lookup'])}H", *arrays["lookup"])
    body += np.array(arrays["symbols"], np.int8).tobytes()
    for key in ("first_code", "count", "first_index"):
        body += struct.pack(f"<{fields['max_length'] + 1}H", *arrays[key])
    return head + body + huffman.encode(layer, code)


def huffman_stream_seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {
        f"real-{bits}bit": stream_seed(weights(bits, 500, bits), rng.integers(0, 256, 64))
        for bits in (2, 4, 8)
    }


def huffman_table_seeds() -> dict[str, bytes]:
    fibonacci = [1, 1]
    while len(fibonacci) < 20:  # a code 16 bits deep: past the 8-bit lookup
        fibonacci.append(fibonacci[-1] + fibonacci[-2])
    deep = np.repeat(np.arange(20, dtype=np.int8), fibonacci)
    seeds = {f"real-{bits}bit": table_seed(weights(bits, 300, bits)) for bits in (2, 4, 8)}
    seeds["real-deep"] = table_seed(deep)
    # What the decoder did with these before it validated: shift by 32 (lookup_bits 0),
    # shifts past 31 and reads past first_code (max_length 40), reads past symbols (a
    # first_index beyond num_symbols), a shift by 200 (a lookup entry longer than the table)
    seeds["regression-lookup-bits-0"] = table_seed(weights(4, 300, 4), lookup_bits=0)
    seeds["regression-max-length-40"] = table_seed(deep, max_length=40, no_long_codes=1)
    seeds["regression-first-index"] = table_seed(deep, first_index_at=16)
    seeds["regression-lookup-length"] = table_seed(weights(8, 300, 8), lookup_entry=200 << 8)
    return seeds


SEEDS = {
    "fuzz_server": server_seeds,
    "fuzz_text": text_seeds,
    "fuzz_cobs": cobs_seeds,
    "fuzz_huffman_stream": huffman_stream_seeds,
    "fuzz_huffman_table": huffman_table_seeds,
}


def main() -> None:
    for target, seeds in SEEDS.items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds().items():
            (folder / name).write_bytes(data)
        print(f"{target}: {len(seeds())} seeds in {folder}")


if __name__ == "__main__":
    main()
