"""kzoo.layers.position: one public class per file; each file adds its import line below."""
from kzoo.layers.position.axial_position_embedding import AxialPositionEmbedding
from kzoo.layers.position.sinusoidal_position_encoding import SinusoidalPositionEncoding
from kzoo.layers.position.position_embedding import PositionEmbedding
from kzoo.layers.position.rotary_embedding import RotaryEmbedding
from kzoo.layers.position.alibi_bias import ALiBiBias
from kzoo.layers.position.relative_position_bias import RelativePositionBias
from kzoo.layers.position.token_and_position_embedding import TokenAndPositionEmbedding
