"""Lower the reorg (space-to-depth) of an ajpq QONNX export to a FINN-mappable sliding window.

``HwGraph.to_qonnx`` writes a stride-s reorg as Reshape (N,C,H,s,W,s) → Transpose
(0,3,5,1,2,4) → Reshape (N,s·s·C,H,W). Its output channel (i·s + j)·C + c is exactly the
(kh, kw, c) order of a qonnx ``Im2Col`` with an s×s kernel and stride s on the NHWC tensor,
which FINN maps to a ConvolutionInputGenerator (no compute, no weights). The NCHW↔NHWC
Transposes put around it cancel against those of the lowered convolutions.
"""

from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

REORG_PERM = [0, 3, 5, 1, 2, 4]


class ReorgToIm2Col(Transformation):
    """Replace Reshape → Transpose(0,3,5,1,2,4) → Reshape by Transpose → Im2Col → Transpose."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for split in model.graph.node:
            if split.op_type != "Reshape":
                continue
            perm = model.find_direct_successors(split)
            if not perm or len(perm) != 1 or perm[0].op_type != "Transpose":
                continue
            perm_attr = [a for a in perm[0].attribute if a.name == "perm"]
            if not perm_attr or list(perm_attr[0].ints) != REORG_PERM:
                continue
            merge = model.find_direct_successors(perm[0])
            if not merge or len(merge) != 1 or merge[0].op_type != "Reshape":
                continue
            self._replace(model, split, perm[0], merge[0])
            return model, True
        return model, False

    @staticmethod
    def _replace(model: ModelWrapper, split, perm, merge) -> None:  # noqa: ANN001
        source, target = split.input[0], merge.output[0]
        n, c, h, w = model.get_tensor_shape(source)
        s = model.get_tensor_shape(split.output[0])[3]
        dtype = model.get_tensor_datatype(source)
        nhwc_in = model.make_new_valueinfo_name()
        model.set_tensor_shape(nhwc_in, [n, h, w, c])
        windows = model.make_new_valueinfo_name()
        model.set_tensor_shape(windows, [n, h // s, w // s, s * s * c])
        model.set_tensor_datatype(nhwc_in, dtype)
        model.set_tensor_datatype(windows, dtype)
        nodes = [
            helper.make_node("Transpose", [source], [nhwc_in], perm=[0, 2, 3, 1]),
            helper.make_node(
                "Im2Col",
                [nhwc_in],
                [windows],
                domain="qonnx.custom_op.general",
                stride=[s, s],
                kernel_size=[s, s],
                input_shape=f"(1, {h}, {w}, {c})",
                pad_amount=[0, 0, 0, 0],
            ),
            helper.make_node("Transpose", [windows], [target], perm=[0, 3, 1, 2]),
        ]
        index = list(model.graph.node).index(split)
        for old in (split, perm, merge):
            model.graph.node.remove(old)
        for offset, node in enumerate(nodes):
            model.graph.node.insert(index + offset, node)
