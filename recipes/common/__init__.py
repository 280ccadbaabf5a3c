"""What every recipe shares, one module per job.

- `config`: a frozen dataclass as the config, every field a command-line
  flag with its help text and default in `--help`; `--size NAME` rows,
  `--smoke`, which writes to `<dir>_smoke` folders so that a smoke run
  never overwrites a real run's model or resume backup.
- `precision`: the dtype policy from `--mixed_precision` and loss scaling.
- `artefacts`: JSON files written atomically, the run's environment, the
  config and metrics written side by side with the model.
- `resume`: the test hooks that stop a run after N steps (an exception, or
  an abrupt exit like a killed process) and kzoo.training's resume helpers.
- `throughput`: tokens per second for fixed-shape batches; kzoo.training's
  `TrainingScalars` and `TokenCount` for counted tokens.

Recipes import `common` (this folder is on `sys.path` when a recipe runs)
and use only kzoo's public API: `kzoo`, `kzoo.data`, `kzoo.training`,
`kzoo.export`.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common.artefacts import environment, read_json, to_jsonable, write_json, write_run  # noqa: E402,F401
from common.config import check_choice, check_positive, parse_config  # noqa: E402,F401
from common.precision import MIXED_PRECISION, set_precision, wrap_optimizer  # noqa: E402,F401
from common.resume import CrashAfterSteps, StopAfterSteps, TrainingInterrupted  # noqa: E402,F401
from common.throughput import Throughput  # noqa: E402,F401
