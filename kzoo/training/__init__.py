"""Training utilities shared by the recipes: callbacks, checkpoints with resume, schedules. Model-agnostic."""
from kzoo.training.checkpointing import ResumableEarlyStopping, make_backup_callback, resumed_epoch, resumed_step  # noqa: F401
from kzoo.training.metrics import TokenCount  # noqa: F401
from kzoo.training.checkpointing import BackupAndRestore  # noqa: F401
from kzoo.training.clock import TrainingClock  # noqa: F401
