"""kzoo.layers.attention: the dense core and every attention pattern built on it.

Each variant subclasses `MultiHeadAttention` and overrides only
`_compute_attention` (plus `build` for variables of its own); one public
class per file, each file adds its import line below.
"""
from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.attention.rotary_multi_head_attention import RotaryMultiHeadAttention
from kzoo.layers.attention.longformer_attention import LongformerAttention
from kzoo.layers.attention.bigbird_attention import BigBirdAttention
from kzoo.layers.attention.sparse_transformer_attention import SparseTransformerAttention
from kzoo.layers.attention.lsh_attention import LSHAttention
from kzoo.layers.attention.relative_multi_head_attention import RelativeMultiHeadAttention
from kzoo.layers.attention.performer_attention import PerformerAttention
from kzoo.layers.attention.linformer_attention import LinformerAttention
