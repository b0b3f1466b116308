"""HwGraph.load on 1,000+ generated bad .hwg files: each is refused with one InvalidGraph
sentence that names the file, never a zipfile/zlib/json/numpy/struct error, never a hang.

Inputs come from one real saved graph (a pruned mixed-precision Skynet): truncated and
random-byte files, sound zip containers whose graph.json or arrays are wrong or whose headers
claim another compression method, and single bit flips. A bit flip may land in a zip field
that zipfile does not read (a timestamp, the attributes, a local header's copy of a size or
CRC); such a file loads, and must load as exactly the original graph.
"""

import copy
import io
import json
import random
import struct
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ajpq
from ajpq.graph.hwgraph import HwGraph, Node
from tests.unit.hostile import (
    attempt,
    bit_flipped,
    deeply_nested,
    failure_report,
    refusal_problem,
    truncated,
)

Header = dict[str, Any]
Members = dict[str, bytes]  # a .hwg file's zip members by name

# Values of the wrong type (or out of range) for each field of a node in graph.json.
WRONG = {
    "name": [None, 5, [], {}, True],
    "op": [None, 5, "", "conv2d", "INPUT", ["conv"], "conv\nrelu"],
    "inputs": [None, "x", 5, {}, [5], [None], ["nonexistent"], ["two\nlines"]],
    "shape": [None, "abc", 5, [], [0], [-3], [1.5], ["3"], [float("inf")], [float("nan")]],
    "bits": [None, "8", 8.5, True, [], 0, -1, 33, 1 << 70, float("inf"), float("nan")],
    "signed": [None, "yes", 1, 0, []],
    "attrs": [None, [], "x", 5],
    "arrays": [None, "weight", 5, {}, [5], ["nonexistent"]],
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[HwGraph, bytes]:
    torch.manual_seed(0)
    model = ajpq.models.skynet(0.125, (16, 32))
    graph = ajpq.lower(ajpq.quantize(model, ajpq.Policy.random(model, seed=1, prune_max=0.5)))
    path = tmp_path_factory.mktemp("hwgraph") / "m.hwg"
    graph.save(path)
    return graph, path.read_bytes()


def zipped(members: Members) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def with_header(members: Members, header: Any) -> Members:
    return {**members, "graph.json": json.dumps(header).encode()}


def without(members: Members, name: str) -> Members:
    return {key: content for key, content in members.items() if key != name}


# ---- content mutations: each takes a copy of graph.json's header and the members --------
def wrong_node_field(header: Header, members: Members, rng: random.Random) -> Members:
    key = rng.choice(sorted(WRONG))
    rng.choice(header["nodes"])[key] = rng.choice(WRONG[key])
    return with_header(members, header)


def node_field_missing(header: Header, members: Members, rng: random.Random) -> Members:
    del rng.choice(header["nodes"])[rng.choice(sorted(WRONG))]
    return with_header(members, header)


def wrong_structure(header: Header, members: Members, rng: random.Random) -> Members:
    nodes = header["nodes"]
    index = rng.randrange(1, len(nodes))
    changes: list[Callable[[], Any]] = [
        lambda: header.pop(rng.choice(["format", "nodes"])),
        lambda: header.update(format=rng.choice([None, 1, "ajpq-hwgraph-2", ""])),
        lambda: header.update(nodes=rng.choice([None, 5, "nodes", {}, [], [None], [5]])),
        lambda: header.update(meta=rng.choice([None, 5, "meta", []])),
        lambda: nodes.insert(0, nodes.pop(index)),  # the first node is not the input
        lambda: nodes.pop(0),  # no input node
        lambda: nodes[index].update(name=nodes[rng.randrange(index)]["name"]),  # used twice
        lambda: nodes[index].update(inputs=[nodes[-1]["name"]]),  # read before it exists
        lambda: nodes[0]["attrs"].update(zero_point=rng.choice([[300, 0, 0], [1], "x", -1])),
    ]
    rng.choice(changes)()
    return with_header(members, header)


def required_array_missing(header: Header, members: Members, rng: random.Random) -> Members:
    index = rng.choice([i for i, node in enumerate(header["nodes"]) if node["op"] == "conv"])
    key = rng.choice(["weight", "bias"])
    if rng.random() < 0.5:
        return without(members, f"arrays/{index}/{key}.npy")  # listed but absent
    header["nodes"][index]["arrays"].remove(key)  # present but not listed
    return with_header(members, header)


def bad_array(header: Header, members: Members, rng: random.Random) -> Members:
    name = rng.choice(sorted(name for name in members if name.endswith(".npy")))
    original = members[name]
    huge = io.BytesIO()  # a header claiming MBs or TBs, followed by 64 bytes
    shape = (rng.choice([10**6, 10**12]),)
    np.lib.format.write_array_header_1_0(
        huge, {"descr": "<i4", "fortran_order": False, "shape": shape}
    )
    replacements = [
        rng.randbytes(rng.randrange(200)),
        original[: rng.randrange(len(original))],
        b"\x93NUMPY" + rng.randbytes(rng.randrange(200)),
        original[:10] + rng.randbytes(len(original) - 10),  # a mangled header
        huge.getvalue() + rng.randbytes(64),
    ]
    return {**members, name: rng.choice(replacements)}


def bad_output_scale(header: Header, members: Members, rng: random.Random) -> Members:
    channels = header["nodes"][-1]["shape"][0]
    if rng.random() < 0.2:
        return without(members, "arrays/output_scale.npy")
    scales = [np.float64(1.0), np.ones((channels, 1)), np.ones(channels + 1), np.ones(0)]
    return {**members, "arrays/output_scale.npy": npy(scales[rng.randrange(len(scales))])}


def bad_header_text(header: Header, members: Members, rng: random.Random) -> Members:
    if rng.random() < 0.1:
        return without(members, "graph.json")
    texts = [
        rng.randbytes(rng.randrange(300)),
        json.dumps(header).encode()[: rng.randrange(1, 200)],
        rng.choice([b"[]", b"5", b'"graph"', b"null", b"{}", b"Infinity"]),
        deeply_nested(),
        b'{"format": "ajpq-hwgraph-1", "nodes": ' + deeply_nested(),
    ]
    return {**members, "graph.json": rng.choice(texts)}


CONTENT = [
    wrong_node_field,
    node_field_missing,
    wrong_structure,
    required_array_missing,
    bad_array,
    bad_output_scale,
    bad_header_text,
]


def other_compression(data: bytes, rng: random.Random) -> bytes:
    """The deflated file, its headers claiming another compression method or encryption."""
    patched = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    (record,) = struct.unpack_from("<I", data, len(data) - 6)  # the central directory
    method = rng.choice([0, 1, 9, 12, 14, 93, 99, 0xFFFF])
    encrypted = rng.random() < 0.2
    for info in infos:  # its local header, then its central directory record
        flags = info.flag_bits | encrypted
        struct.pack_into("<HH", patched, info.header_offset + 6, flags, method)
        struct.pack_into("<HH", patched, record + 8, flags, method)
        name, extra, comment = struct.unpack_from("<HHH", data, record + 28)
        record += 46 + name + extra + comment
    return bytes(patched)


def bad_files(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """(kind, file content) for every bad file, each of which must be refused."""
    for _ in range(250):
        yield "truncated", truncated(data, rng)
    for _ in range(150):
        junk = rng.randbytes(rng.randrange(4096))
        yield "random bytes", b"PK\x03\x04" + junk if rng.random() < 0.5 else junk
    for _ in range(50):
        yield "other compression", other_compression(data, rng)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    header = json.loads(members["graph.json"])
    for _ in range(700):
        mutate = rng.choice(CONTENT)
        yield mutate.__name__, zipped(mutate(copy.deepcopy(header), members, rng))


def test_bad_files_are_refused_in_one_sentence(
    tmp_path: Path, saved: tuple[HwGraph, bytes]
) -> None:
    problems: list[str] = []
    tried: Counter[str] = Counter()
    for kind, content in bad_files(saved[1], random.Random(20240611)):
        path = tmp_path / f"{kind.replace(' ', '_')}.hwg"
        path.write_bytes(content)
        problem = refusal_problem(attempt(lambda path=path: HwGraph.load(path)), str(path))
        if problem:
            problems.append(f"{kind}: {problem}")
        tried[kind] += 1
    assert not problems, failure_report(problems)
    assert sum(tried.values()) == 1150
    assert len(tried) == 3 + len(CONTENT) and min(tried.values()) >= 50, tried


def test_bit_flips_are_refused_or_change_nothing(
    tmp_path: Path, saved: tuple[HwGraph, bytes]
) -> None:
    """About 40% of this small file is zip headers, and about 40% of those bytes are fields
    zipfile ignores (CRC-32 guards the members' contents): some 16% of flips load, unchanged."""
    graph, data = saved
    rng = random.Random(7)
    problems: list[str] = []
    unread = 0  # flips that changed nothing ajpq reads
    flips = 400
    for _ in range(flips):
        path = tmp_path / "flipped.hwg"
        path.write_bytes(bit_flipped(data, rng))
        outcome = attempt(lambda path=path: HwGraph.load(path))
        if outcome.error is None:
            unread += 1
            if not same_graph(outcome.value, graph):
                problems.append("accepted a flip that changed the graph")
        elif problem := refusal_problem(outcome, str(path)):
            problems.append(problem)
    assert not problems, failure_report(problems)
    assert 0 < unread <= flips // 4


def same_graph(loaded: HwGraph, graph: HwGraph) -> bool:
    def fields(node: Node) -> tuple:
        return node.name, node.op, node.inputs, node.shape, node.bits, node.signed, node.attrs

    return (
        [fields(n) for n in loaded.nodes] == [fields(n) for n in graph.nodes]
        and loaded.meta == graph.meta
        and np.array_equal(loaded.output_scale, graph.output_scale)
        and all(
            sorted(a.arrays) == sorted(b.arrays)
            and all(np.array_equal(a.arrays[key], b.arrays[key]) for key in a.arrays)
            for a, b in zip(loaded.nodes, graph.nodes, strict=True)
        )
    )
