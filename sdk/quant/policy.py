"""Policy: a bit-width for every output channel of every quantizable layer (0 = pruned).

One idea carries the whole product: pruning is quantization to 0 bits. A Policy is what the
AJPQ search chooses, what ``quantize`` realises, and what ``lower`` carries to the backends.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from ajpq.errors import InvalidPolicy, one_line
from ajpq.quant.capture import FloatOp, capture
from ajpq.quant.importance import op_importance

FORMAT = "ajpq-policy-1"
WEIGHT_BITS = (0, 2, 3, 4, 5, 6, 7, 8)
ACT_BITS = (2, 3, 4, 5, 6, 7, 8)


@dataclass(frozen=True)
class LayerSpec:
    """What a policy needs to know about one quantizable layer."""

    name: str
    kind: str  # conv | linear
    out_channels: int
    depthwise: bool
    is_output: bool  # its outputs are the model's outputs: never pruned
    residual: bool = False  # its outputs meet others' at a residual add (see residual_layers)

    @property
    def prunable(self) -> bool:
        """Whether the constructors and the search prune it: not the output, not a depthwise
        conv (its channels follow its input), not a layer feeding a residual add (AMC's rule:
        a pruned channel there leaves the whole residual stream). Hand-written policies may."""
        return not (self.is_output or self.depthwise or self.residual)


@dataclass(frozen=True)
class LayerPolicy:
    weight_bits: tuple[int, ...]  # one per output channel; 0 = pruned
    act_bits: int  # bit-width of the layer's output activation


def layer_specs(model: nn.Module, input_size: tuple[int, int] | None = None) -> list[LayerSpec]:
    return specs_of(capture(model, input_size))


def specs_of(ops: list[FloatOp]) -> list[LayerSpec]:
    """One ``LayerSpec`` per captured conv/linear op, in order (``layer_specs`` captures them)."""
    last = ops[-1].name
    residual = residual_layers(ops)
    return [
        LayerSpec(
            op.name,
            op.kind,
            int(op.weight.shape[0]),
            _depthwise(op),
            op.name == last,
            op.name in residual,
        )
        for op in ops
        if op.kind in ("conv", "linear")
    ]


def _depthwise(op: FloatOp) -> bool:
    return op.kind == "conv" and op.attrs["groups"] > 1


def residual_layers(ops: list[FloatOp]) -> set[str]:
    """The layers whose output channels reach a residual add: traced back from every add's
    inputs through the ops that carry channels (pools, concat, earlier adds — an identity
    shortcut — and depthwise convs, which follow their input) to the layers producing them."""
    by_name = {op.name: op for op in ops}
    found: set[str] = set()
    seen: set[str] = set()
    pending = [name for op in ops if op.kind == "add" for name in op.inputs]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        op = by_name[name]
        if op.kind in ("conv", "linear"):
            found.add(name)
            if not _depthwise(op):
                continue
        pending.extend(op.inputs)
    return found


def quantile_bits(importance: np.ndarray, sparsity: float, bits: Sequence[int]) -> np.ndarray:
    """One layer's channel bit-widths: 0 for the least important ``sparsity`` share (at least
    one channel kept), the kept ones split into ``len(bits)`` equal importance quantiles, the
    most important getting ``bits[0]``."""
    channels = len(importance)
    order = np.argsort(-np.asarray(importance), kind="stable")
    kept = max(1, channels - int(round(sparsity * channels)))
    chosen = np.zeros(channels, dtype=int)
    for group, indices in enumerate(np.array_split(order[:kept], len(bits))):
        chosen[indices] = bits[group]
    return chosen


@dataclass(frozen=True)
class Policy:
    """Per-layer, per-output-channel weight bit-widths and per-layer activation bit-widths."""

    layers: Mapping[str, LayerPolicy]

    # ---- constructors -------------------------------------------------------------------
    @classmethod
    def uniform(
        cls,
        model: nn.Module,
        weight_bits: int = 8,
        act_bits: int = 8,
        input_size: tuple[int, int] | None = None,
    ) -> "Policy":
        specs = layer_specs(model, input_size)
        return cls(
            {s.name: LayerPolicy((weight_bits,) * s.out_channels, act_bits) for s in specs}
        ).validated(specs)

    @classmethod
    def random(
        cls,
        model: nn.Module,
        seed: int = 0,
        prune_max: float = 0.5,
        bits: Sequence[int] = (2, 3, 4, 5, 6, 7, 8),
        act_bits: Sequence[int] = (4, 8),
        input_size: tuple[int, int] | None = None,
    ) -> "Policy":
        """Random mixed bit-widths with up to ``prune_max`` of each layer's channels pruned.

        Depthwise layers are not pruned on their own: their channels follow their input.
        """
        rng = np.random.default_rng(seed)
        layers = {}
        for spec in layer_specs(model, input_size):
            chosen = rng.choice(np.asarray(bits), size=spec.out_channels)
            if not (spec.is_output or spec.depthwise):
                n_pruned = int(rng.uniform(0, prune_max) * spec.out_channels)
                n_pruned = min(n_pruned, spec.out_channels - 1)
                chosen[rng.permutation(spec.out_channels)[:n_pruned]] = 0
            layers[spec.name] = LayerPolicy(
                tuple(int(b) for b in chosen), int(rng.choice(np.asarray(act_bits)))
            )
        return cls(layers).validated(layer_specs(model, input_size))

    @classmethod
    def from_sparsity(
        cls,
        model: nn.Module,
        sparsity: float | Mapping[str, float],
        bits: int | Sequence[int] = 8,
        act_bits: int = 8,
        input_size: tuple[int, int] | None = None,
    ) -> "Policy":
        """Prune the least important ``sparsity`` fraction of each layer's channels (L1 norm,
        see ``ajpq.quant.importance``); give the kept channels ``bits``. A sequence of bit-
        widths splits the kept channels into equal importance quantiles, most important first.
        Depthwise layers get no sparsity of their own: they lose the channels their input
        loses (see ``ajpq.quant.masks``).
        """
        ops = capture(model, input_size)
        specs = specs_of(ops)
        by_name = {op.name: op for op in ops}
        layers = {}
        for spec in specs:
            share = sparsity.get(spec.name, 0.0) if isinstance(sparsity, Mapping) else sparsity
            share = float(share) if spec.prunable else 0.0
            quantiles = [bits] if isinstance(bits, int) else list(bits)
            chosen = quantile_bits(op_importance(by_name[spec.name]), share, quantiles)
            layers[spec.name] = LayerPolicy(tuple(int(b) for b in chosen), act_bits)
        return cls(layers).validated(specs)

    # ---- checks and queries -------------------------------------------------------------
    def validated(self, specs: Sequence[LayerSpec]) -> "Policy":
        """Return self, or raise InvalidPolicy if it does not fit the layers ``specs``."""
        names = [s.name for s in specs]
        if sorted(self.layers) != sorted(names):
            missing = sorted(set(names) - set(self.layers))
            extra = sorted(set(self.layers) - set(names))
            raise InvalidPolicy(
                f"the policy does not match this model (missing layers {missing[:3]}, unknown "
                f"layers {extra[:3]}); build it for this model with Policy.uniform/from_sparsity"
            )
        for spec in specs:
            self._check_layer(spec, self.layers[spec.name])
        return self

    @staticmethod
    def _check_layer(spec: LayerSpec, layer: LayerPolicy) -> None:
        where = f"layer '{spec.name}'"
        if len(layer.weight_bits) != spec.out_channels:
            raise InvalidPolicy(
                f"{where} has {spec.out_channels} output channels but the policy gives "
                f"{len(layer.weight_bits)} bit-widths; the policy was made for another model"
            )
        bad = sorted({b for b in layer.weight_bits if b not in WEIGHT_BITS})
        if bad:
            raise InvalidPolicy(f"{where} uses weight bit-width {bad[0]}; allowed: {WEIGHT_BITS}")
        if layer.act_bits not in ACT_BITS:
            raise InvalidPolicy(
                f"{where} uses activation bit-width {layer.act_bits}; allowed: {ACT_BITS}"
            )
        if all(b == 0 for b in layer.weight_bits):
            raise InvalidPolicy(f"{where} prunes every channel; keep at least one")
        if spec.is_output and 0 in layer.weight_bits:
            raise InvalidPolicy(
                f"{where} produces the model's outputs and cannot be pruned; give each of its "
                "channels 2..8 bits"
            )

    def kept(self, name: str) -> np.ndarray:
        return np.asarray(self.layers[name].weight_bits) > 0

    def sparsity(self) -> dict[str, float]:
        return {n: 1.0 - float(self.kept(n).mean()) for n in self.layers}

    # ---- persistence --------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "layers": {
                    name: {"weight_bits": list(lp.weight_bits), "act_bits": lp.act_bits}
                    for name, lp in self.layers.items()
                },
            },
            indent=1,
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(
        cls,
        path: str | Path,
        model: nn.Module | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> "Policy":
        """Load a policy JSON; with ``model``, also check that it fits that model."""
        try:
            layers = _parse_layers(json.loads(Path(path).read_text()))
        except (OSError, ValueError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, _Malformed) else f"{type(exc).__name__}: {exc}"
            raise InvalidPolicy(
                f"{path} is not an ajpq policy JSON ({one_line(reason)}); "
                "write one with Policy.save"
            ) from None
        if model is None:
            return cls(layers)
        try:
            return cls(layers).validated(layer_specs(model, input_size))
        except InvalidPolicy as error:
            raise InvalidPolicy(f"{path}: {error}") from None


class _Malformed(ValueError):
    """A policy JSON breaks the format; the message says where."""


def _parse_layers(raw: object) -> dict[str, LayerPolicy]:
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _Malformed(f'it needs "format": "{FORMAT}" in a JSON object')
    if not isinstance(raw.get("layers"), dict):
        raise _Malformed('it needs an object "layers"')
    layers: dict[str, LayerPolicy] = {}
    for name, layer in raw["layers"].items():
        weight_bits = layer.get("weight_bits") if isinstance(layer, dict) else None
        act_bits = layer.get("act_bits") if isinstance(layer, dict) else None
        if not isinstance(weight_bits, list) or not all(map(_is_whole, [*weight_bits, act_bits])):
            raise _Malformed(
                f'layer {name!r} needs a list of whole numbers "weight_bits" and a whole '
                'number "act_bits"'
            )
        layers[name] = LayerPolicy(tuple(weight_bits), act_bits)
    return layers


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
