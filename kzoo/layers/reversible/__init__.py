"""kzoo.layers.reversible: reversible residual blocks and the memory-saving stack."""
from kzoo.layers.reversible.reversible_block import ReversibleBlock
from kzoo.layers.reversible.reversible_encoder import ReversibleEncoder
