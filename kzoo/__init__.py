"""kzoo: a Keras 3 model zoo for sequence models."""

__version__ = "0.1.0"

from kzoo import layers  # noqa: F401
from kzoo.models import *  # noqa: F401,F403
