"""kzoo.layers.sparse: one public class per file; each file adds its import line below."""
from kzoo.layers.sparse.lsh_attention import LSHAttention
from kzoo.layers.sparse.longformer_attention import LongformerAttention
from kzoo.layers.sparse.reversible import ReversibleBlock
from kzoo.layers.sparse.reversible import ReversibleEncoder
from kzoo.layers.sparse.chunked_feed_forward import ChunkedFeedForward
from kzoo.layers.sparse.relative_multi_head_attention import RelativeMultiHeadAttention
from kzoo.layers.sparse.performer_attention import PerformerAttention
from kzoo.layers.sparse.linformer_attention import LinformerAttention
from kzoo.layers.sparse.bigbird_attention import BigBirdAttention
from kzoo.layers.sparse.sparse_transformer_attention import SparseTransformerAttention
