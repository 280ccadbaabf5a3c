"""kzoo.layers.recurrent: one public class per file; each file adds its import line below."""
from kzoo.layers.recurrent.bahdanau_attention import BahdanauAttention
from kzoo.layers.recurrent.luong_attention import LuongAttention
from kzoo.layers.recurrent.recurrent_encoder import RecurrentEncoder
from kzoo.layers.recurrent.attention_decoder import AttentionDecoder
