"""Analysis: per-layer costs, receptive fields and comparisons, computed on the meta device."""

from cnnlab.analysis.compare import Comparison, compare
from cnnlab.analysis.inputs import meta_model, parse_input_size
from cnnlab.analysis.summary import Summary, summary

__all__ = ["Comparison", "Summary", "compare", "meta_model", "parse_input_size", "summary"]
