"""The CNN of a config: spec (YAML → nodes) → shapes (analytic records) → network (torch module).

The package's names are the torch-free part: parsing a model and walking its shapes need no torch,
so config checks and ``geocnn summarize`` start fast. The torch module is built by
:func:`geocnn.model.network.build`.
"""

from geocnn.model.shapes import Inference, LayerRecord, accepts, infer, nearest_accepted, size_rules
from geocnn.model.spec import ModelSpec, Node, parse_model

__all__ = ["ModelSpec", "Node", "parse_model", "Inference", "LayerRecord", "infer", "accepts",
           "size_rules", "nearest_accepted"]
