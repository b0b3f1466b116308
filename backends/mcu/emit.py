"""Emit the model as C: ajpq_model.h, ajpq_model.c (one const params struct per layer and
the inference loop) and ajpq_weights.c (Huffman-packed weights and per-channel parameters).

Weights stay Huffman-coded in flash; before each layer the run loop decodes them into one
shared scratch buffer (as large as the largest layer) that the layer's params point to.
"""

import hashlib
from dataclasses import dataclass

import numpy as np

from ajpq.backends.mcu import huffman
from ajpq.backends.mcu.budget import bias_scratch_offset, narrow_bias
from ajpq.backends.mcu.integrity import Integrity
from ajpq.backends.mcu.plan import Plan, Step
from ajpq.graph.golden import double_rounding
from ajpq.graph.hwgraph import HwGraph, Node

CTYPE_BYTES = {"uint8_t": 1, "int8_t": 1, "int16_t": 2, "int32_t": 4}


@dataclass(frozen=True)
class LayerWeights:
    """What the report needs to know about one layer's packed weights."""

    name: str
    count: int
    huffman_bytes: int
    huffman_bits: int
    entropy_bits: float  # summed over the coded groups: the bound for this coder
    layer_entropy_bits: float  # of the layer's symbols taken as one source
    fixed_width_bits: int  # each channel packed at its own bit-width
    symbols: int
    groups: int


def c_array(ctype: str, name: str, values: np.ndarray, per_line: int = 16) -> str:
    flat = [str(int(v)) for v in np.asarray(values).ravel()] or ["0"]
    lines = [", ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    body = ",\n    ".join(lines)
    return f"const {ctype} {name}[{len(flat)}] = {{\n    {body}\n}};\n"


def _uniform(values: np.ndarray) -> bool:
    return bool(np.all(values == values.ravel()[0]))


def model_hash(graph: HwGraph) -> str:
    digest = hashlib.sha256()
    for node in graph.nodes:
        digest.update(f"{node.name}{node.op}{node.shape}{sorted(node.attrs.items())}".encode())
        for key in sorted(node.arrays):
            digest.update(np.ascontiguousarray(node.arrays[key]).tobytes())
    return digest.hexdigest()[:16]


class Emitter:
    def __init__(self, graph: HwGraph, plan: Plan, group_codes: bool = True) -> None:
        self.graph, self.plan = graph, plan
        self.weights: list[str] = []  # ajpq_weights.c pieces
        self.externs: list[str] = []
        self.params: list[str] = []  # model.c params structs
        self.calls: list[str] = []  # model.c run loop
        self.layer_weights: list[LayerWeights] = []
        self.group_codes = group_codes
        self.decodes: dict[int, list[str]] = {}
        self.data_bytes = 0  # flash taken by the emitted arrays (tables estimated)
        self.integrity = Integrity()

    # ---- per-layer data in ajpq_weights.c ----------------------------------------------
    def data(self, ctype: str, name: str, values: np.ndarray) -> str:
        self.weights.append(c_array(ctype, name, values))
        self.integrity.add_blob(name, ctype, values)
        self.data_bytes += max(1, np.asarray(values).size) * CTYPE_BYTES[ctype]
        self.externs.append(f"extern const {ctype} {name}[{max(1, np.asarray(values).size)}];")
        return name

    def groups(self, node: Node) -> list[tuple[int, int]]:
        """(first channel, channel count) of each separately coded group of channels."""
        return huffman.channel_groups(
            node.arrays["weight"], node.arrays.get("bit_groups"), self.group_codes
        )

    def packed_weights(self, index: int, node: Node) -> None:
        """Huffman-code the layer's weights: one canonical code per group of channels."""
        weight = node.arrays["weight"].astype(np.int64)
        per_channel = weight[0].size
        stream_bytes = coded_bits = 0
        entropy = 0.0
        symbols = set()
        self.decodes[index] = []
        for group, (first, count) in enumerate(self.groups(node)):
            values = weight[first : first + count].ravel()
            code = huffman.build_code(values)
            stream = huffman.encode(values, code)
            name = f"ajpq_w{index}_g{group}"
            self.data("uint8_t", f"{name}_bits", np.frombuffer(stream, dtype=np.uint8))
            self.weights.append(huffman.c_table(f"{name}_table", code))
            for suffix, ctype, array in huffman.table_arrays(code):
                self.integrity.add_blob(f"{name}_table_{suffix}", ctype, array)
            self.integrity.add_table(f"{name}_table", huffman.table_shape(code))
            self.data_bytes += huffman.table_bytes(code)
            self.externs.append(f"extern const ajpq_huffman_table_t {name}_table;")
            self.decodes[index].append(
                f"    if (ajpq_huffman_decode(&{name}_table, {name}_bits, sizeof {name}_bits, "
                f"{values.size}u, ajpq_weight_scratch + {first * per_channel}) != 0) {{\n"
                "        ajpq_model_faults++;\n    }\n"
            )
            stream_bytes += len(stream)
            coded_bits += huffman.encoded_bits(values, code)
            entropy += float(huffman.entropy_bits(values))
            symbols |= set(code.symbols)
        self.layer_weights.append(
            LayerWeights(
                node.name,
                int(weight.size),
                stream_bytes,
                coded_bits,
                entropy,
                float(huffman.entropy_bits(weight.ravel())),
                int(node.arrays["weight_bits"].astype(np.int64).sum() * per_channel),
                len(symbols),
                len(self.decodes[index]),
            )
        )

    def requant(self, prefix: str, node: Node) -> str:
        """The layer's ajpq_requant_t; one multiplier and shift when every channel has the
        same pair (per_tensor), else one per channel."""
        if not node.attrs.get("requant", True):
            return "{0, 0, 0, 0, 0}"
        multiplier, shift = node.arrays["multiplier"], node.arrays["shift"]
        per_tensor = multiplier.size > 1 and _uniform(multiplier) and _uniform(shift)
        if per_tensor:
            multiplier, shift = multiplier.ravel()[:1], shift.ravel()[:1]
        m = self.data("int32_t", f"{prefix}_multiplier", multiplier)
        s = self.data("int8_t", f"{prefix}_shift", shift)
        fields = [1, m, s, node.attrs["act_min"], node.attrs["act_max"]]
        rounding = int(double_rounding(node))
        fields += [rounding, 1] if per_tensor else [1] if rounding else []  # omitted: 0
        return "{" + ", ".join(str(f) for f in fields) + "}"

    def bias(self, index: int, prefix: str, node: Node) -> str:
        """The layer's int32 biases: in flash, or (``budget.narrow_bias``) stored as int16
        and widened into the weight scratch, after the weights, once they are decoded."""
        bias = node.arrays["bias"]
        if not narrow_bias(bias):
            return self.data("int32_t", f"{prefix}_bias", bias)
        name = self.data("int16_t", f"{prefix}_bias", bias)
        at = f"(ajpq_weight_scratch + {bias_scratch_offset(node.arrays['weight'].size)})"
        self.decodes[index].append(f"    ajpq_widen_bias({name}, {bias.size}u, (int32_t *){at});\n")
        return f"(const int32_t *){at}"

    def add_double(self, prefix: str, node: Node) -> dict[str, str]:
        """The add's fields for TFLite's ADD in double rounding (none in single rounding)."""
        if not double_rounding(node):
            return {}
        return {
            "rounding": "1",
            "shift_a": self.data("int8_t", f"{prefix}_shift_a", node.arrays["shift_a"]),
            "shift_b": self.data("int8_t", f"{prefix}_shift_b", node.arrays["shift_b"]),
            "multiplier": self.data("int32_t", f"{prefix}_multiplier", node.arrays["multiplier"]),
            "left_shift": str(node.attrs["left_shift"]),
        }

    # ---- params structs and calls -------------------------------------------------------
    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.node(name).shape

    def step(self, index: int, step: Step) -> None:
        node, kind = step.node, step.kind
        args = ", ".join(self.pointer(i, "const int16_t") for i in step.inputs)
        out = self.pointer(step.output, "void")
        comment = f"/* {index}: {node.name} ({kind}) */"
        if kind == "flatten":
            self.calls.append(f"    {comment} /* a view: shares its input's memory */")
            return
        decode = ""
        fields = self.fields(index, step)
        ptype = {
            "conv": "conv",
            "dwconv": "dwconv",
            "linear": "linear",
            "maxpool": "pool",
            "avgpool": "pool",
            "add": "add",
            "concat": "concat",
            "reorg": "reorg",
        }[kind]
        self.params.append(
            f"static const ajpq_{ptype}_params_t ajpq_p{index} = {{\n"
            + ",\n".join(f"    .{k} = {v}" for k, v in fields.items())
            + "\n};\n"
        )
        if "weight" in node.arrays:
            decode = "".join(self.decodes[index]) + "    AJPQ_MARK_DECODED();\n"
        if kind == "concat":
            inputs = ", ".join(self.pointer(i, "const int16_t") for i in step.inputs)
            call = (
                f"    {{\n        const int16_t *const inputs[] = {{{inputs}}};\n"
                f"        {step.kernel}(&ajpq_p{index}, inputs, {out}, 0);\n    }}\n"
            )
        else:
            out_cast = (
                self.pointer(step.output, "int16_t") if kind in ("maxpool", "add", "reorg") else out
            )
            scratch = "ajpq_kernel_scratch" if step.scratch_bytes else "0"
            call = f"    {step.kernel}(&ajpq_p{index}, {args}, {out_cast}, {scratch});\n"
        self.calls.append(
            f"    {comment}\n    AJPQ_LAYER_START();\n{decode}{call}    AJPQ_LAYER_END({index});\n"
        )

    def pointer(self, tensor: str, ctype: str) -> str:
        return f"(({ctype} *)AJPQ_AT({self.plan.tensors[tensor].offset}))"

    def fields(self, index: int, step: Step) -> dict[str, str]:
        node, kind, prefix = step.node, step.kind, f"ajpq_w{index}"
        if kind in ("conv", "dwconv"):
            self.packed_weights(index, node)
            c_in, h_in, w_in = self.shape(step.inputs[0])
            in_index = (
                self.data("int32_t", f"{prefix}_in_index", node.arrays["in_index"])
                if "in_index" in node.arrays
                else "0"
            )
            kh, kw = node.arrays["weight"].shape[2:]
            common = {
                "in_height": h_in,
                "in_width": w_in,
                "out_height": node.shape[1],
                "out_width": node.shape[2],
                "kernel_h": kh,
                "kernel_w": kw,
                "stride_h": node.attrs["stride"][0],
                "stride_w": node.attrs["stride"][1],
                "pad_h": node.attrs["padding"][0],
                "pad_w": node.attrs["padding"][1],
                "in_index": in_index,
                "weight": "ajpq_weight_scratch",
                "bias": self.bias(index, prefix, node),
                "requant": self.requant(prefix, node),
            }
            if kind == "dwconv":
                return {"channels": node.channels, **common}
            return {
                "in_channels": node.arrays["weight"].shape[1],
                **common,
                "out_channels": node.channels,
            }
        if kind == "linear":
            self.packed_weights(index, node)
            return {
                "in_features": node.arrays["weight"].shape[1],
                "out_features": node.channels,
                "weight": "ajpq_weight_scratch",
                "bias": self.bias(index, prefix, node),
                "requant": self.requant(prefix, node),
            }
        if kind in ("maxpool", "avgpool"):
            c, h_in, w_in = self.shape(step.inputs[0])
            fields = {
                "channels": c,
                "in_height": h_in,
                "in_width": w_in,
                "out_height": node.shape[1],
                "out_width": node.shape[2],
                "kernel_h": node.attrs["kernel"][0],
                "kernel_w": node.attrs["kernel"][1],
                "stride_h": node.attrs["stride"][0],
                "stride_w": node.attrs["stride"][1],
                "pad_h": node.attrs["padding"][0],
                "pad_w": node.attrs["padding"][1],
            }
            if kind == "avgpool":
                fields["requant"] = self.requant(prefix, node)
            return fields
        if kind == "add":
            size = int(np.prod(node.shape[1:])) if len(node.shape) > 1 else 1
            return {
                "channels": node.channels,
                "size": size,
                "index_a": self.data("int32_t", f"{prefix}_index_a", node.arrays["index_a"]),
                "index_b": self.data("int32_t", f"{prefix}_index_b", node.arrays["index_b"]),
                "multiplier_a": self.data("int32_t", f"{prefix}_ma", node.arrays["multiplier_a"]),
                "multiplier_b": self.data("int32_t", f"{prefix}_mb", node.arrays["multiplier_b"]),
                "shift": self.data("int8_t", f"{prefix}_shift", node.arrays["shift"]),
                "act_min": node.attrs["act_min"],
                "act_max": node.attrs["act_max"],
                **self.add_double(prefix, node),
            }
        if kind == "concat":
            channels = [self.shape(i)[0] for i in step.inputs]
            return {
                "num_inputs": len(channels),
                "channels": self.data("int32_t", f"{prefix}_channels", np.array(channels)),
                "size": int(np.prod(node.shape[1:])),
                "requant": self.requant(prefix, node),
            }
        c, h_in, w_in = self.shape(step.inputs[0])  # reorg
        return {"channels": c, "in_height": h_in, "in_width": w_in, "stride": node.attrs["stride"]}
