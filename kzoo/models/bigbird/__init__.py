from kzoo.models.bigbird.bigbird_encoder import BigBirdEncoder
from kzoo.models.bigbird.bigbird_encoder_block import BigBirdEncoderBlock
