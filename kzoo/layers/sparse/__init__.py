"""kzoo.layers.sparse: one public class per file; each file adds its import line below."""
from kzoo.layers.sparse.lsh_attention import LSHAttention
from kzoo.layers.sparse.longformer_attention import LongformerAttention
