"""Writing .tflite flatbuffers without TensorFlow: the schema's object API from the
``tflite-micro`` package, one subgraph, int8/int32 tensors with per-tensor or per-channel
quantization."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ajpq.errors import ToolchainMissing

INSTALL = "pip install -c constraints.txt tflite-micro (make setup installs it)"


def schema() -> Any:
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    except ImportError:
        raise ToolchainMissing(f"writing .tflite files needs tflite-micro: {INSTALL}") from None
    return schema_py_generated


TENSOR_TYPES = {np.dtype(np.int8): "INT8", np.dtype(np.int32): "INT32"}


@dataclass
class ModelBuilder:
    """Tensors, constant buffers and operators of one subgraph; ``finish`` gives the bytes."""

    description: str = "ajpq"
    tensors: list[Any] = field(default_factory=list)
    buffers: list[Any] = field(default_factory=list)
    operators: list[Any] = field(default_factory=list)
    opcodes: dict[int, int] = field(default_factory=dict)  # builtin code -> opcode index

    def __post_init__(self) -> None:
        self.s = schema()
        self.buffers.append(self.s.BufferT())  # buffer 0: the empty one every model has

    def tensor(
        self, name: str, shape: tuple[int, ...], dtype: Any, scale: Any, zero_point: Any,
        data: np.ndarray | None = None, axis: int = 0,
    ) -> int:  # fmt: skip
        """Add a tensor (a constant one when ``data`` is given); its index."""
        s = self.s
        tensor = s.TensorT()
        tensor.name, tensor.shape = name, list(shape)
        tensor.type = getattr(s.TensorType, TENSOR_TYPES[np.dtype(dtype)])
        quantization = s.QuantizationParametersT()
        quantization.scale = [float(v) for v in np.atleast_1d(np.float32(scale))]
        quantization.zeroPoint = [int(v) for v in np.atleast_1d(zero_point)]
        quantization.quantizedDimension = axis
        tensor.quantization = quantization
        tensor.buffer = 0
        if data is not None:
            buffer = s.BufferT()
            buffer.data = list(np.ascontiguousarray(data, dtype=dtype).tobytes())
            self.buffers.append(buffer)
            tensor.buffer = len(self.buffers) - 1
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def operator(self, code: str, inputs: list[int], outputs: list[int], options: Any) -> None:
        """Add a builtin operator (``code`` as in BuiltinOperator, e.g. "CONV_2D") with its
        options object (e.g. ``Conv2DOptionsT``), or None."""
        s = self.s
        builtin = getattr(s.BuiltinOperator, code)
        index = self.opcodes.setdefault(builtin, len(self.opcodes))
        op = s.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = index, list(inputs), list(outputs)
        if options is not None:
            op.builtinOptionsType = getattr(s.BuiltinOptions, type(options).__name__[:-1])
            op.builtinOptions = options
        self.operators.append(op)

    def finish(self, inputs: list[int], outputs: list[int]) -> bytes:
        import flatbuffers

        s = self.s
        subgraph = s.SubGraphT()
        subgraph.tensors, subgraph.operators = self.tensors, self.operators
        subgraph.inputs, subgraph.outputs = list(inputs), list(outputs)
        model = s.ModelT()
        model.version, model.description = 3, self.description
        model.subgraphs, model.buffers = [subgraph], self.buffers
        model.operatorCodes = []
        for builtin in sorted(self.opcodes, key=self.opcodes.__getitem__):
            code = s.OperatorCodeT()
            code.builtinCode, code.version = builtin, 1
            code.deprecatedBuiltinCode = min(builtin, 127)
            model.operatorCodes.append(code)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
