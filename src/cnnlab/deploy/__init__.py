"""Deploy: BatchNorm folding, export (ONNX, ExportedProgram, TorchScript) and latency benchmarks."""

from cnnlab.deploy.bench import Timing, benchmark
from cnnlab.deploy.export import ExportError, export_onnx, export_program, export_torchscript
from cnnlab.deploy.fold import FoldReport, fold_batchnorm
from cnnlab.weights import InitReport, WeightsError, initialize_from, read_state_dict

__all__ = ["ExportError", "FoldReport", "InitReport", "WeightsError", "initialize_from", "read_state_dict", "Timing", "benchmark", "export_onnx", "export_program", "export_torchscript",
           "fold_batchnorm"]
