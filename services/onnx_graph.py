"""A small builder for ONNX graphs written op by op (``services/e5_onnx.py``, ``services/minilm_onnx.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["GraphBuilder"]


class GraphBuilder:
    """Names every node and initializer of an ONNX graph under construction."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def const(self, name: str, value: npt.ArrayLike, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], *, name: str | None = None, **attrs: Any) -> str:
        """Add a one-output node; returns the name of its output."""
        from onnx import helper

        node_name = name or f"{op_type.lower()}_{len(self.nodes)}"
        output = f"{node_name}_out"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=node_name, **attrs))
        return output
