"""The mcu estimate prices a layer on the kernel the plan gives it: a conv whose M4 scratch
passes the board's cap runs the reference kernel, about 12x the instructions per MAC."""

import torch
from torch import nn

import ajpq
from ajpq.backends.mcu.estimate import DEFAULT_FACTORS, estimate, reference_layers
from ajpq.boards import get


class Wide(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 48, 3, padding=1)
        self.wide = nn.Conv2d(48, 48, 3, padding=1)  # M4 im2col scratch ~ 43 KB
        self.fc = nn.Linear(48, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.wide(torch.relu(self.stem(x / 255))))
        return self.fc(x.mean((2, 3)))


def test_a_conv_over_the_scratch_cap_is_priced_as_the_reference_kernel() -> None:
    torch.manual_seed(0)
    model = Wide()
    policy = ajpq.Policy.uniform(model, 8, 8, input_size=(8, 8))
    hw = ajpq.lower(ajpq.quantize(model, policy, input_size=(8, 8)))
    assert reference_layers(hw, get("qemu-mps2-an386")) == {"wide"}
    layers = estimate(hw, "qemu-mps2-an386").per_layer
    assert layers["wide"]["kind"] == "conv3x3_ref" and layers["stem"]["kind"] == "conv3x3"
    macs = 48 * 48 * 9 * 64
    assert layers["wide"]["work"] == macs
    assert layers["wide"]["count"] - layers["wide"]["decode"] == DEFAULT_FACTORS["conv_ref"] * macs
