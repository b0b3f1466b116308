"""The analytical FINN cost model: folding, cycles and resources from ``layers.Layer`` alone.

No finn-plus, no ONNX: cheap enough for every search episode. The formulas follow the ones
finn-plus's own estimators use (documented in docs/finn.md), evaluated on the shapes and
bit-widths of the HwGraph; ``calibrate`` (calibration.py) scales them per op to finn-plus's
reports. ``fold`` mirrors folding.py with a target but no budget: every unit (a depthwise SWG
and the VVAU/Pool it feeds, or one node) takes its next legal step, least added parallelism
first, until its cycles reach the target; without a target every PE/SIMD stays 1.
"""

import math
from typing import Any

from ajpq.backends.finn.layers import Layer

Fold = dict[str, int]  # {"PE" | "SIMD" | "parallel_window" | "dsp" | "bram": value}
RESOURCES = ("LUT", "BRAM_18K", "URAM", "DSP")
MVAU_DSP_PACKING = 4  # DSP48E2: an RTL MVAU packs 4 PEs into one DSP per SIMD lane
DSP_INPUT_BITS = 48  # a VVAU on DSPs: one DSP per PE per 48 bits of weight + input
LUTRAM_DEPTH = 64  # one LUT holds 64 x 1 bit
SWG_LUTRAM_DEPTH = 38  # FINN's line-buffer LUTRAM depth per LUT
BRAM_WORDS = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2))  # RAMB18 depth, width


def knobs(layer: Layer) -> list[tuple[str, int]]:
    """(attribute, the dimension its value must divide) for each PE/SIMD of ``layer``."""
    if layer.op == "MVAU":
        return [("SIMD", layer.mw), ("PE", layer.mh)]
    if layer.op == "VVAU":
        return [("PE", layer.channels), ("SIMD", math.prod(layer.kernel))]
    if layer.op in ("ConvolutionInputGenerator", "FMPadding"):
        return [("SIMD", layer.channels)]
    if layer.op == "StreamingConcat":
        return [("SIMD", math.gcd(*layer.streams))]
    return [("PE", layer.channels)]


def unfolded(layer: Layer) -> Fold:
    return {attr: 1 for attr, _ in knobs(layer)} | {"parallel_window": 0, "dsp": 0, "bram": 0}


def _window_cycles(layer: Layer, fold: Fold) -> int:
    factor = layer.channels // fold["SIMD"]
    (in_h, in_w), (out_h, out_w) = layer.ifm, layer.ofm
    (k_h, k_w), (s_h, s_w) = layer.kernel, layer.stride
    if fold["parallel_window"] or layer.kernel == (1, 1):
        return in_h * in_w * factor + 2
    per_row = max(out_w * k_w * k_h * factor, s_w * in_w * factor)
    if layer.depthwise:
        per_row += out_w * (s_w - 1) * (factor - 1)
    cycles = ((k_h - 1) * in_w + k_w) * factor + out_h * per_row
    return cycles + ((s_h - 1) * in_w * factor if layer.depthwise else 0)


def cycles(layer: Layer, fold: Fold) -> int:
    """Clock cycles per frame of ``layer`` folded as ``fold`` (FINN's get_exp_cycles)."""
    if layer.op == "ConvolutionInputGenerator":
        return _window_cycles(layer, fold)
    if layer.op == "MVAU":
        return layer.mh // fold["PE"] * (layer.mw // fold["SIMD"]) * layer.pixels
    if layer.op == "VVAU":
        window = math.prod(layer.kernel) // fold["SIMD"]
        return layer.channels // fold["PE"] * window * layer.pixels
    if layer.op == "Pool":
        return layer.channels * math.prod(layer.kernel) // fold["PE"] * layer.pixels
    parallel = fold.get("PE", fold.get("SIMD", 1))
    return layer.channels // parallel * layer.pixels


def _weight_bram(omega: float, width: int) -> int:
    """RAMB18s for a ``width``-bit wide, ``omega``-deep weight memory (FINN's table)."""
    if width <= 2:
        return math.ceil(omega / (16384 // width))
    if width <= 4:
        return math.ceil(omega / 4096)
    if width <= 9:
        return math.ceil(omega / 2048)
    if width <= 18 or omega > 512:
        return math.ceil(omega / 1024) * math.ceil(width / 18)
    return math.ceil(omega / 512) * math.ceil(width / 36)


def _mac_resources(layer: Layer, fold: Fold) -> dict[str, float]:
    pe, simd, w, a = fold["PE"], fold["SIMD"], layer.weight_bits, layer.in_bits
    if layer.op == "MVAU":  # RTL MVU: DSP-based, weights in BRAM
        omega = layer.mw * layer.mh / (pe * simd)
        dsp = math.ceil(pe / MVAU_DSP_PACKING) * simd
        return {"LUT": 0.0, "BRAM_18K": _weight_bram(omega, pe * simd * w), "DSP": dsp}
    multipliers = 0 if fold["dsp"] else simd * (2 * math.ceil((w + a) / 6) - 1) * (w + a)
    adders = (w + a) * (2 * simd - 1)
    lut = 300 + 1.1 * pe * (multipliers + adders + layer.acc_bits)
    omega = layer.channels * math.prod(layer.kernel) / (pe * simd)
    bram = 0 if omega <= 128 else _weight_bram(omega, pe * simd * w)
    dsp = pe * math.ceil((w + a) / DSP_INPUT_BITS) if fold["dsp"] else 0
    return {"LUT": lut, "BRAM_18K": bram, "DSP": dsp}


def _threshold_luts(layer: Layer, fold: Fold) -> float:
    """Per PE one LUTRAM per binary-search stage (depth C/PE * 2^s, as wide as the
    accumulator) and one comparator per stage (about one LUT per input bit)."""
    per_pe = layer.channels // fold["PE"]
    memory = sum(
        layer.acc_bits * math.ceil(per_pe * 2**stage / LUTRAM_DEPTH)
        for stage in range(layer.out_bits)
    )
    return fold["PE"] * (memory + layer.out_bits * layer.in_bits)


def _window_buffer(layer: Layer, fold: Fold) -> int:
    factor = layer.channels // fold["SIMD"]
    (k_h, k_w), in_w = layer.kernel, layer.ifm[1]
    if fold["parallel_window"] or layer.kernel == (1, 1):
        return ((k_h - 1) * in_w + k_w - 1) * factor + 2
    depth = ((k_h - 1) * in_w + k_w) * factor
    depth += max(0, ((layer.stride[1] - 1) - k_h * k_w) * factor)
    return depth + max(0, ((layer.stride[0] - 1) * in_w - k_h * k_w) * factor)


def _window_bram(layer: Layer, fold: Fold) -> int:
    """RAMB18s of a line buffer moved to BRAM (one memory, or k_h - 1 row buffers when the
    whole window is emitted at once)."""
    width = fold["SIMD"] * layer.in_bits
    if fold["parallel_window"] or layer.kernel == (1, 1):
        depth, count = layer.ifm[1] - layer.kernel[1], layer.kernel[0] - 1
    else:
        depth, count = _window_buffer(layer, fold), 1
    if depth <= 0 or count <= 0:
        return 0
    word = next((w for d, w in BRAM_WORDS if depth <= d), 1)
    return math.ceil(depth / 16384) * math.ceil(width / word) * count


def _window_resources(layer: Layer, fold: Fold) -> dict[str, float]:
    if fold["bram"]:
        return {"LUT": 300, "BRAM_18K": _window_bram(layer, fold)}
    depth = _window_buffer(layer, fold)
    return {"LUT": 300 + fold["SIMD"] * layer.in_bits * math.ceil(depth / SWG_LUTRAM_DEPTH)}


def resources(layer: Layer, fold: Fold) -> dict[str, float]:
    """LUT, BRAM_18K, URAM and DSP of ``layer`` folded as ``fold``."""
    used = dict.fromkeys(RESOURCES, 0.0)
    op, bits = layer.op, layer.in_bits
    if op in ("MVAU", "VVAU"):
        used.update(_mac_resources(layer, fold))
    elif op == "Thresholding":
        used["LUT"] = _threshold_luts(layer, fold)
    elif op == "ConvolutionInputGenerator":
        used.update(_window_resources(layer, fold))
    elif op == "FMPadding":
        used["LUT"] = 40 + 2 * fold["SIMD"] * bits
    elif op == "Pool":
        used["LUT"] = 60 + 2 * fold["PE"] * layer.out_bits * math.prod(layer.kernel)
    elif op == "DuplicateStreams":
        used["LUT"] = 40 + fold["PE"] * bits * len(layer.streams) // 2
    elif op == "StreamingConcat":
        used["LUT"] = 40 + fold["SIMD"] * bits * len(layer.streams)
    return used


def units(layer_list: list[Layer]) -> list[list[int]]:
    """Indices folded together: a tied SWG with the node after it, every other node alone."""
    groups, index = [], 0
    while index < len(layer_list):
        tied = layer_list[index].tied and index + 1 < len(layer_list)
        groups.append([index, index + 1] if tied else [index])
        index += 2 if tied else 1
    return groups


def _next_divisor(value: int, bound: int) -> int | None:
    return next((d for d in range(value + 1, bound + 1) if bound % d == 0), None)


def candidates(lead: Layer, fold: Fold, swg: Fold | None) -> list[dict[str, Any]]:
    """The next legal steps of a unit, least added parallelism first (as folding.py).

    A step is {"lead": {attr: value}, "swg": {attr: value}}.
    """
    if lead.op in ("VVAU", "Pool", "MVAU"):
        options = []
        for attr, bound in knobs(lead):
            value = _next_divisor(fold[attr], bound)
            if value is None or (lead.op == "VVAU" and attr == "SIMD"):
                continue
            tied = {"SIMD": value} if swg is not None and attr == "PE" else {}
            options.append({"lead": {attr: value}, "swg": tied})
        window = math.prod(lead.kernel)
        if lead.op == "VVAU" and swg is not None and fold["SIMD"] < window:
            options.append({"lead": {"SIMD": window}, "swg": {"parallel_window": 1}})

        def parallelism(step: dict[str, Any]) -> int:
            values = {attr: fold[attr] for attr, _ in knobs(lead)} | step["lead"]
            return math.prod(values.values())

        return sorted(options, key=parallelism)
    for attr, bound in knobs(lead):
        value = _next_divisor(fold[attr], bound)
        if value is not None:
            return [{"lead": {attr: value}, "swg": {}}]
    is_window = lead.op == "ConvolutionInputGenerator" and math.prod(lead.kernel) > 1
    return (
        [{"lead": {"parallel_window": 1}, "swg": {}}]
        if is_window and not fold["parallel_window"]
        else []
    )


def fold(
    layer_list: list[Layer], target_cycles: float | None, scale: dict[str, float] | None = None
) -> list[Fold]:
    """PE/SIMD per layer: each unit unfolds until its cycles (x ``scale[op]``) reach
    ``target_cycles`` or it is fully parallel; ``None`` leaves everything at 1."""
    folds = [unfolded(layer) for layer in layer_list]
    if target_cycles is None:
        return folds
    scale = scale or {}

    def unit_cycles(members: list[int]) -> float:
        return max(
            cycles(layer_list[i], folds[i]) * scale.get(layer_list[i].op, 1.0) for i in members
        )

    for members in units(layer_list):
        lead = members[-1]
        swg = folds[members[0]] if len(members) == 2 else None
        while unit_cycles(members) > target_cycles:
            steps = candidates(layer_list[lead], folds[lead], swg)
            if not steps:
                break
            folds[lead].update(steps[0]["lead"])
            if swg is not None:
                swg.update(steps[0]["swg"])
    return folds


def moves(layer: Layer, fold: Fold) -> list[str]:
    """Where ``layer`` can move its LUT use (as folding.free_luts): a VVAU's multipliers to
    DSPs ("dsp"), an SWG's line buffer to BRAM ("bram")."""
    if layer.op == "VVAU" and not fold["dsp"]:
        return ["dsp"]
    if layer.op == "ConvolutionInputGenerator" and not fold["bram"]:
        return ["bram"]
    return []


def rebind(
    layer_list: list[Layer],
    folds: list[Fold],
    used: list[dict[str, float]],
    limit: dict[str, float],
    cost: Any = resources,
) -> None:
    """While LUT is over ``limit``, take the move that saves the most LUT and keeps every
    other resource within it; ``used[i]`` (layer i's resources, ``cost(layer, fold)``) and
    ``folds`` are updated in place."""
    totals = {k: sum(u[k] for u in used) for k in limit}
    if totals["LUT"] <= limit["LUT"]:
        return
    options = {
        (index, move): cost(layer, fold | {move: 1})
        for index, (layer, fold) in enumerate(zip(layer_list, folds, strict=True))
        for move in moves(layer, fold)
    }
    while totals["LUT"] > limit["LUT"]:
        best, best_saved = None, 0.0
        for (index, move), after in options.items():
            saved = used[index]["LUT"] - after["LUT"]
            if saved > best_saved and all(
                totals[k] - used[index][k] + after[k] <= v for k, v in limit.items() if k != "LUT"
            ):
                best, best_saved = (index, move), saved
        if best is None:
            return
        index, move = best
        after = options.pop(best)
        totals = {k: totals[k] - used[index][k] + after[k] for k in limit}
        folds[index][move], used[index] = 1, after
