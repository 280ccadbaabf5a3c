"""kzoo models: one folder per model family; each adds its import lines below."""
from kzoo.models.backbone import Backbone, get_model, list_models, list_sizes
from kzoo.models.task import Task
from kzoo.models.gru_translator import GRUTranslator
from kzoo.models.transformer_encoder import TransformerEncoder
from kzoo.models.bert import BertEncoder, BertMaskedLM, BertClassifier
from kzoo.models.transformer_lm import TransformerLM
from kzoo.models.transformer_seq2seq import TransformerSeq2Seq
from kzoo.models.recurrent import RecurrentClassifier, RecurrentRegressor
from kzoo.models.lstm_transformer_hybrid import LSTMTransformerHybrid
from kzoo.models.reformer import ReformerLM
from kzoo.models.transformer_xl import TransformerXLLM
from kzoo.models.linear_attention import PerformerEncoder, LinformerEncoder
from kzoo.models.longformer import LongformerEncoder, LongformerClassifier
from kzoo.models.bigbird import BigBirdEncoder
from kzoo.models.sparse_transformer import SparseTransformerLM
