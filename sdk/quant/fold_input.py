"""``fold_input(model, mean, std)``: a float model that takes raw pixels, normalization folded.

Users train on ``x = (p / 255 - mean_c) / std_c`` (``p`` a uint8 pixel of channel ``c``). The
folded model starts with ``Normalize(1/255, zero_point=zp)``, ``zp_c = round(255 * mean_c)``
(the mean rounded to a whole pixel value, as TFLite does), so it computes
``u = (p - zp_c) / 255`` from the same pixels, and every conv reading the input takes
``x = u / std_c + delta_c`` into its weights and bias::

    W' = W / std_c                 (per input channel)
    b' = b + sum_{c, taps} W[:, c] * delta_c,   delta_c = (zp_c - 255 mean_c) / (255 std_c)

Exact in the interior. At a zero-padded border the folded model pads with the mean pixel
``zp_c`` where the user's padded with ``mean_c``: the outputs there differ by at most
``sum |W[:, c]| * |delta_c|``, which is 0 whenever ``255 * mean_c`` is a whole number.
The model is re-traced with torch.fx, so its layer names (and any policy written for them)
and its state_dict keys stay the user's.
"""

import copy
import math
from collections.abc import Sequence

import torch
from torch import fx, nn

from ajpq.data.samples import to_pixels
from ajpq.errors import InvalidData, UnsupportedOp
from ajpq.models.layers import Normalize
from ajpq.quant.capture import LEAF_TYPES

PIXEL_MAX = 255.0
NORMALIZE_NAME = "input_normalize"
PASS_THROUGH = (nn.Identity, nn.Dropout, nn.Dropout2d)  # identities at inference
FORWARDED = ("input_size", "anchors", "num_anchors", "grid_size")


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAF_TYPES) or super().is_leaf_module(m, qualname)


def fold_input(
    model: nn.Module,
    mean: Sequence[float],
    std: Sequence[float],
    input_size: tuple[int, int] | None = None,
) -> nn.Module:
    """A new float module taking raw pixels 0..255 (as float) that computes what ``model``
    computes on ``(pixels / 255 - mean) / std``; ``model`` itself is left untouched."""
    folded = copy.deepcopy(model)
    graph = _trace(folded)
    placeholder = _single_input(graph)
    convs = _input_convs(folded, graph, placeholder)
    channels = convs[0][1].in_channels
    mean_c, std_c = _per_channel(mean, "mean", channels), _per_channel(std, "std", channels)
    _check_ranges(mean_c, std_c)
    zero_point = tuple(int(round(PIXEL_MAX * m)) for m in mean_c)
    delta = [
        (z - PIXEL_MAX * m) / (PIXEL_MAX * s)
        for z, m, s in zip(zero_point, mean_c, std_c, strict=True)
    ]
    for _, conv in convs:
        _fold_conv(conv, std_c, delta)
    name = _free_name(folded)
    folded.add_module(name, Normalize(1.0 / PIXEL_MAX, zero_point=zero_point))
    with graph.inserting_after(placeholder):
        normalize = graph.call_module(name, (placeholder,))
    placeholder.replace_all_uses_with(normalize, delete_user_cb=lambda user: user is not normalize)
    result = fx.GraphModule(folded, graph, class_name=type(model).__name__ + "Folded")
    for attr in FORWARDED:
        if hasattr(model, attr):
            setattr(result, attr, copy.deepcopy(getattr(model, attr)))
    if input_size is not None:
        result.input_size = tuple(int(d) for d in input_size)
    return result


def normalized_to_pixels(
    x: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """The uint8 pixels (as float 0..255) behind normalized images ``(p/255 - mean)/std``
    (N, C, H, W), what a folded or deployed model takes for a dataset the user normalized
    (``ajpq.data.samples.to_pixels``: refused where they are not whole pixels)."""
    channels = x.shape[1]
    mean_c, std_c = _per_channel(mean, "mean", channels), _per_channel(std, "std", channels)
    _check_ranges(mean_c, std_c)
    return to_pixels(x, (mean_c, std_c))


def _trace(model: nn.Module) -> fx.Graph:
    try:
        return _Tracer().trace(model)
    except Exception as exc:  # fx raises many types for untraceable Python
        raise UnsupportedOp(
            f"fold_input cannot trace {type(model).__name__} with torch.fx ({exc}); "
            "write its forward without data-dependent Python control flow"
        ) from None


def _single_input(graph: fx.Graph) -> fx.Node:
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UnsupportedOp(
            f"fold_input needs a model whose forward takes one image tensor, not "
            f"{len(placeholders)} arguments"
        )
    return placeholders[0]


def _input_convs(
    model: nn.Module, graph: fx.Graph, placeholder: fx.Node
) -> list[tuple[str, nn.Conv2d]]:
    """The Conv2d modules reading the input (through Identity/Dropout); UnsupportedOp for
    any other reader."""
    modules = dict(model.named_modules())
    convs: list[tuple[str, nn.Conv2d]] = []
    for user in _readers(placeholder, modules):
        module = modules.get(str(user.target)) if user.op == "call_module" else None
        if isinstance(module, Normalize):
            raise UnsupportedOp(
                f"the model already starts with Normalize ('{user.target}'); pass it to "
                "quantize as it is, without input_normalization"
            )
        if not isinstance(module, nn.Conv2d):
            what = type(module).__name__ if module is not None else f"{user.op} {user.target}"
            raise UnsupportedOp(
                f"the model's input is read by '{user.name}' ({what}); fold_input folds the "
                "normalization only into Conv2d layers that read the image directly"
            )
        calls = [n for n in graph.nodes if n.op == "call_module" and n.target == user.target]
        if len(calls) != 1:
            raise UnsupportedOp(
                f"conv '{user.target}' reads the input and is called {len(calls)} times; "
                "fold_input needs the first conv to be used once"
            )
        convs.append((str(user.target), module))
    if not convs:
        raise UnsupportedOp("the model never reads its input; fold_input has nothing to fold")
    sizes = {conv.in_channels for _, conv in convs}
    if len(sizes) != 1:
        raise UnsupportedOp(
            f"the convs reading the input disagree on its channels ({sorted(sizes)}); "
            "give them the same in_channels"
        )
    return convs


def _readers(node: fx.Node, modules: dict[str, nn.Module]) -> list[fx.Node]:
    """The nodes reading ``node``'s value, looking through identities (Identity, Dropout)."""
    readers: list[fx.Node] = []
    for user in node.users:
        module = modules.get(str(user.target)) if user.op == "call_module" else None
        if isinstance(module, PASS_THROUGH):
            readers += _readers(user, modules)
        else:
            readers.append(user)
    return readers


def _per_channel(values: Sequence[float], what: str, channels: int) -> list[float]:
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidData(f"{what} must be a sequence of numbers, not {values!r}") from None
    if len(floats) == 1:
        return floats * channels
    if len(floats) != channels:
        raise InvalidData(
            f"{what} has {len(floats)} values but the model's input has {channels} channels; "
            f"give one {what} per channel (or one for all)"
        )
    return floats


def _check_ranges(mean: list[float], std: list[float]) -> None:
    for c, (m, s) in enumerate(zip(mean, std, strict=True)):
        if not (math.isfinite(s) and s > 0):
            raise InvalidData(f"std of channel {c} is {s}; every std must be a positive number")
        if not (math.isfinite(m) and 0.0 <= m <= 1.0):
            raise InvalidData(
                f"mean of channel {c} is {m}; give the mean of pixels scaled to 0..1 "
                "(the torchvision convention, e.g. 0.485)"
            )


def _fold_conv(conv: nn.Conv2d, std: list[float], delta: list[float]) -> None:
    """W' = W / std_c and b' = b + sum W[:, c] * delta_c, per input channel c of each group."""
    weight = conv.weight.detach().double()
    per_group = weight.shape[1]
    out_per_group = weight.shape[0] // conv.groups
    group = torch.arange(weight.shape[0]) // out_per_group
    channel = group[:, None] * per_group + torch.arange(per_group)[None, :]  # (out, in/groups)
    std_t = torch.tensor(std, dtype=torch.float64)[channel]
    delta_t = torch.tensor(delta, dtype=torch.float64)[channel]
    shift = (weight.sum(dim=(2, 3)) * delta_t).sum(dim=1)
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(shift)
    dtype = conv.weight.dtype
    with torch.no_grad():
        conv.weight.copy_((weight / std_t[:, :, None, None]).to(dtype))
    conv.bias = nn.Parameter((bias + shift).to(dtype))


def _free_name(model: nn.Module) -> str:
    names = dict(model.named_modules())
    name, index = NORMALIZE_NAME, 1
    while name in names or hasattr(model, name):
        name, index = f"{NORMALIZE_NAME}_{index}", index + 1
    return name
