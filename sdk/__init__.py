"""ajpq: automated joint pruning and quantization of CNNs for microcontrollers and FPGAs.

The flow, in order::

    model = ajpq.models.skynet(width_mult=0.25, input_size=(64, 128))
    train, val = ajpq.data.aerial(2000, 300, input_size=(64, 128))
    ajpq.train(model, train, val, epochs=10)
    policy = ajpq.Policy.from_sparsity(model, 0.3, bits=[8, 6, 4])
    qmodel = ajpq.quantize(model, policy)          # Brevitas QAT model, trainable
    ajpq.train(qmodel, train, val, epochs=2)        # QAT fine-tune
    hw = ajpq.lower(qmodel)                         # integer-only HwGraph
    hw.run(images_uint8)                            # golden executor
    art = ajpq.compile(hw, backend="mcu", board="qemu-mps2-an386", out_dir="build/skynet")
    art.run_host(images_uint8)                      # the generated C, built with gcc

Any other CNN and task: ``ajpq.train(my_cnn, my_dataset, my_val, task=ajpq.tasks.Classification())``
and ``ajpq.search(my_cnn, ..., task=..., input_normalization=(mean, std))`` (README: "Bring
your own model").
"""

import warnings

warnings.filterwarnings("ignore", message=".*Named tensors.*")  # emitted by Brevitas on import

from ajpq import data, errors, metrics, models, tasks  # noqa: E402
from ajpq.deploy import compile  # noqa: E402
from ajpq.errors import (  # noqa: E402
    AjpqError,
    InvalidData,
    InvalidGraph,
    InvalidPolicy,
    ToolchainMissing,
    UnsupportedOp,
)
from ajpq.graph.hwgraph import HwGraph  # noqa: E402
from ajpq.graph.lower import lower  # noqa: E402
from ajpq.quant.policy import LayerPolicy, Policy  # noqa: E402
from ajpq.quant.quantize import QuantModel, quantize  # noqa: E402
from ajpq.search import Budget, search  # noqa: E402
from ajpq.train import evaluate, predict, score, train  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "AjpqError",
    "Budget",
    "search",
    "compile",
    "HwGraph",
    "InvalidData",
    "InvalidGraph",
    "InvalidPolicy",
    "LayerPolicy",
    "Policy",
    "QuantModel",
    "ToolchainMissing",
    "UnsupportedOp",
    "data",
    "errors",
    "evaluate",
    "lower",
    "metrics",
    "models",
    "predict",
    "quantize",
    "score",
    "tasks",
    "train",
]
