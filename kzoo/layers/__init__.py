"""kzoo layers, by concept: attention, position, transformer, recurrent."""

from kzoo.layers.attention import *  # noqa: F401,F403
