"""Training and evaluation: a run (run.py) around the epoch loop (loop.py), its settings, schedules,
metrics, checkpoints, transfer phases and data-parallel training."""

from cnnlab.models.from_checkpoint import load_model
from cnnlab.train.config import TrainConfig
from cnnlab.train.loop import TrainingDiverged
from cnnlab.train.run import RunResult, fit

__all__ = ["RunResult", "TrainConfig", "TrainingDiverged", "fit", "load_model"]
