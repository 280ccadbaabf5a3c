from kzoo.models.reformer.pre_norm_branch import PreNormBranch
from kzoo.models.reformer.reformer_lm import ReformerLM
