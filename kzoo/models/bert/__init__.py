from kzoo.models.bert.bert_encoder import BERT_SIZES
from kzoo.models.bert.bert_encoder import BertEncoder
from kzoo.models.bert.bert_masked_lm import BertMaskedLM
from kzoo.models.bert.bert_classifier import BertClassifier
from kzoo.models.pooled_classifier import POOLING
