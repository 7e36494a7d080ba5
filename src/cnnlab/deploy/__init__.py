"""Deploy: BatchNorm folding (more to come: weight mapping, export, latency benchmark)."""

from cnnlab.deploy.fold import FoldReport, fold_batchnorm

__all__ = ["FoldReport", "fold_batchnorm"]
