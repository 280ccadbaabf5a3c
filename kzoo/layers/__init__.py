"""kzoo layers, by concept: attention, position, transformer, recurrent, reversible."""

from kzoo.layers.attention import *  # noqa: F401,F403
from kzoo.layers.position import *  # noqa: F401,F403
from kzoo.layers.transformer import *  # noqa: F401,F403
from kzoo.layers.recurrent import *  # noqa: F401,F403
from kzoo.layers.reversible import *  # noqa: F401,F403
from kzoo.layers.dropout import Dropout  # noqa: F401
