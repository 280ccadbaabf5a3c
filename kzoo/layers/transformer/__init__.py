"""kzoo.layers.transformer: one public class per file; each file adds its import line below."""
from kzoo.layers.transformer.feed_forward import FeedForward
from kzoo.layers.transformer.chunked_feed_forward import ChunkedFeedForward
from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.layers.transformer.transformer_decoder_block import TransformerDecoderBlock
