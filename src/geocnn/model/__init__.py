"""The CNN of a config: spec (YAML → nodes) → shapes (analytic records) → network (torch module)."""

from geocnn.model.network import build
from geocnn.model.shapes import Inference, LayerRecord, accepts, infer, nearest_accepted, size_rules
from geocnn.model.spec import ModelSpec, Node, parse_model

__all__ = ["ModelSpec", "Node", "parse_model", "Inference", "LayerRecord", "infer", "accepts",
           "size_rules", "nearest_accepted", "build"]
