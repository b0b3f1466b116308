"""Policy.load on 1,000+ generated bad policy JSON files: each is refused with one
InvalidPolicy sentence that names the file and says what to do, never a bare ValueError,
KeyError, TypeError or OverflowError, never a hang.

Inputs come from one real policy of a small Skynet: truncated and random-byte files, deep
nesting, wrong types, wrong layer names and out-of-range bit-widths, each loaded against the
model. A single bit flip may turn one digit into another legal bit-width (4 -> 5, 8 -> 0 on a
prunable layer); such a file loads, and must differ from the original in that one value only.
"""

import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import ajpq
from ajpq.quant import policy as policy_module
from ajpq.quant.policy import LayerSpec, Policy, layer_specs
from tests.unit.hostile import (
    attempt,
    bit_flipped,
    deeply_nested,
    failure_report,
    refusal_problem,
    truncated,
)

SIZE = (16, 32)
INF = float("inf")
WRONG_WEIGHT_BITS = [None, "888", 8, {}, [["8"]], ["8"], [8.0], [True], [None], [8.5], [INF]]
WRONG_ACT_BITS = [None, "8", 8.0, True, [8], INF, float("nan")]
BAD_WEIGHT_BITS = [1, 9, 10, 16, 32, 64, -1, -8, 1 << 40]
BAD_ACT_BITS = [0, 1, 9, 16, 32, -4, 1 << 40]


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return ajpq.models.skynet(0.125, SIZE)


@pytest.fixture(scope="module")
def specs(model: nn.Module) -> list[LayerSpec]:
    return layer_specs(model, SIZE)


@pytest.fixture()
def captured_once(monkeypatch: pytest.MonkeyPatch, specs: list[LayerSpec]) -> None:
    """Policy.load(path, model) checks against the model's layers; capture them once, not
    once per file (0.1 s each)."""
    monkeypatch.setattr(policy_module, "layer_specs", lambda model, input_size=None: specs)


@pytest.fixture(scope="module")
def original(model: nn.Module) -> Policy:
    return Policy.random(model, seed=1, prune_max=0.5, input_size=SIZE)


def wrong_type(raw: dict[str, Any], specs: list[LayerSpec], rng: random.Random) -> Any:
    layer = raw["layers"][rng.choice(specs).name]
    changes: list[Callable[[], Any]] = [
        lambda: raw.pop(rng.choice(["format", "layers"])),
        lambda: raw.update(format=rng.choice([None, 1, "ajpq-policy-2", ""])),
        lambda: raw.update(layers=rng.choice([None, 5, "layers", [], [layer]])),
        lambda: raw["layers"].update(head=rng.choice([None, 5, "8", [], True])),
        lambda: layer.pop(rng.choice(["weight_bits", "act_bits"])),
        lambda: layer.update(weight_bits=rng.choice(WRONG_WEIGHT_BITS)),
        lambda: layer["weight_bits"].__setitem__(0, rng.choice(WRONG_ACT_BITS)),
        lambda: layer.update(act_bits=rng.choice(WRONG_ACT_BITS)),
    ]
    rng.choice(changes)()
    return raw


def wrong_layer_names(raw: dict[str, Any], specs: list[LayerSpec], rng: random.Random) -> Any:
    layers = raw["layers"]
    name = rng.choice(specs).name
    new_name = rng.choice([name.upper(), name + "_", "", "two\nlines", rng.randbytes(8).hex()])
    changes: list[Callable[[], Any]] = [
        lambda: layers.update({new_name: layers.pop(name)}),  # renamed
        lambda: layers.pop(name),  # missing
        lambda: layers.update({new_name: layers[name]}),  # one too many
    ]
    rng.choice(changes)()
    return raw


def out_of_range_bits(raw: dict[str, Any], specs: list[LayerSpec], rng: random.Random) -> Any:
    spec = rng.choice([spec for spec in specs if spec.prunable])
    layer, head = raw["layers"][spec.name], raw["layers"][specs[-1].name]
    bits = layer["weight_bits"]
    changes: list[Callable[[], Any]] = [
        lambda: bits.__setitem__(rng.randrange(len(bits)), rng.choice(BAD_WEIGHT_BITS)),
        lambda: layer.update(act_bits=rng.choice(BAD_ACT_BITS)),
        lambda: bits.pop(),  # one channel too few
        lambda: bits.append(8),  # one too many
        lambda: layer.update(weight_bits=[0] * len(bits)),  # every channel pruned
        lambda: head["weight_bits"].__setitem__(0, 0),  # the output layer pruned
    ]
    rng.choice(changes)()
    return raw


MUTATIONS = [wrong_type, wrong_layer_names, out_of_range_bits]


def bad_files(text: str, specs: list[LayerSpec], rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """(kind, file content) for every bad policy file, each of which must be refused."""
    data = text.encode()
    for _ in range(250):
        yield "truncated", truncated(data, rng)
    for _ in range(150):
        yield "random bytes", rng.randbytes(rng.randrange(2000))
    for depth in (1000, 100_000):
        yield "deeply nested", deeply_nested(depth)
        yield "deeply nested", b'{"format": "ajpq-policy-1", "layers": ' + deeply_nested(depth)
    for _ in range(900):
        mutate = rng.choice(MUTATIONS)
        yield mutate.__name__, json.dumps(mutate(json.loads(text), specs, rng), indent=1).encode()


@pytest.mark.usefixtures("captured_once")
def test_bad_files_are_refused_in_one_sentence(
    tmp_path: Path, model: nn.Module, specs: list[LayerSpec], original: Policy
) -> None:
    problems: list[str] = []
    tried: Counter[str] = Counter()
    for kind, content in bad_files(original.to_json(), specs, random.Random(1234)):
        path = tmp_path / f"{kind.replace(' ', '_')}.json"
        path.write_bytes(content)
        outcome = attempt(lambda path=path: Policy.load(path, model, SIZE))
        if problem := refusal_problem(outcome, str(path)):
            problems.append(f"{kind}: {problem}")
        tried[kind] += 1
    assert not problems, failure_report(problems)
    assert sum(tried.values()) == 1304
    assert len(tried) == 3 + len(MUTATIONS) and min(tried.values()) == 4, tried


def test_files_that_break_the_format_are_refused_without_a_model(
    tmp_path: Path, specs: list[LayerSpec], original: Policy
) -> None:
    problems: list[str] = []
    tried = 0
    for kind, content in bad_files(original.to_json(), specs, random.Random(1234)):
        if kind in ("wrong_layer_names", "out_of_range_bits"):
            continue  # only a model tells these apart from a good policy
        path = tmp_path / "bad.json"
        path.write_bytes(content)
        if problem := refusal_problem(attempt(lambda path=path: Policy.load(path)), str(path)):
            problems.append(f"{kind}: {problem}")
        tried += 1
    assert not problems, failure_report(problems)
    assert tried == 689


@pytest.mark.usefixtures("captured_once")
def test_bit_flips_are_refused_or_change_one_legal_bit_width(
    tmp_path: Path, model: nn.Module, original: Policy
) -> None:
    data = original.to_json().encode()
    rng = random.Random(99)
    problems: list[str] = []
    legal = 0  # flips of a digit into another legal bit-width
    flips = 600
    for _ in range(flips):
        path = tmp_path / "flipped.json"
        path.write_bytes(bit_flipped(data, rng))
        outcome = attempt(lambda path=path: Policy.load(path, model, SIZE))
        if outcome.error is None:
            legal += 1
            if changed_bit_widths(outcome.value, original) != 1:
                problems.append(f"accepted a flip that changed more: {path.read_text()[:80]!r}")
        elif problem := refusal_problem(outcome, str(path)):
            problems.append(problem)
    assert not problems, failure_report(problems)
    assert 0 < legal <= flips // 10  # digits are ~15% of the text; a third of their flips


def changed_bit_widths(loaded: Policy, original: Policy) -> int:
    """How many weight and activation bit-widths differ (the layers must be the same)."""
    assert list(loaded.layers) == list(original.layers)
    changed = 0
    for name, layer in loaded.layers.items():
        before = original.layers[name]
        changed += sum(a != b for a, b in zip(layer.weight_bits, before.weight_bits, strict=True))
        changed += layer.act_bits != before.act_bits
    return changed
