"""Training and evaluation: the loop, schedules, metrics and checkpoints."""

from cnnlab.train.checkpoint import load_model
from cnnlab.train.config import TrainConfig
from cnnlab.train.loop import RunResult, TrainingDiverged, fit

__all__ = ["RunResult", "TrainConfig", "TrainingDiverged", "fit", "load_model"]
