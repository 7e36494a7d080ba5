"""Analysis: per-layer costs, receptive fields and comparisons, computed on the meta device."""

from cnnlab.analysis.summary import Summary, parse_input_size, summary

__all__ = ["Summary", "parse_input_size", "summary"]
