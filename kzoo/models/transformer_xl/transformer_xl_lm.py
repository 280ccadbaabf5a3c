"""Transformer-XL language model with segment-level recurrence.

Letters: B batch, T segment length, M memory length, L layers,
D `hidden_dim`, V `vocabulary_size`.
"""

import keras
import numpy as np
from keras import ops

from kzoo.backend.compile import compiled_function
from kzoo.layers.dropout import Dropout
from kzoo.models import generation
from kzoo.models.backbone import Backbone
from kzoo.models.checks import check_model_sizes
from kzoo.models.checks import validate_token_inputs
from kzoo.models.transformer_xl.transformer_xl_block import TransformerXLBlock
from kzoo.utils.validation import check_non_negative_int
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate
from kzoo.utils.validation import check_same_dims
from kzoo.utils.validation import static_shape


@keras.saving.register_keras_serializable(package="kzoo")
class TransformerXLLM(Backbone):
    """Transformer-XL causal language model: logits and new memories.

    "Transformer-XL: Attentive Language Models Beyond a Fixed-Length Context"
    (Dai et al., 2019). Token embeddings (no absolute positions: positions
    are relative, inside each attention), dropout, `num_layers`
    `TransformerXLBlock`s, and logits through the tied embedding. Layer l
    attends to the memory `memories[:, l]`, the inputs of layer l for the
    previous `M` tokens; the model returns the new memories, the last
    `memory_length` of `concat(memories[:, l], inputs of layer l)`, to feed
    with the next segment. Gradients never flow into memories.

    Its layers are attributes: `token_embedding` (a
    `keras.layers.ReversibleEmbedding`, also the output projection),
    `embeddings_dropout`, `transformer_layers`.

    Args:
        vocabulary_size: V.
        num_layers: L.
        num_heads: heads per layer; must divide `hidden_dim`.
        hidden_dim: D.
        intermediate_dim: feed-forward width.
        memory_length: M, how many past positions each layer keeps.
        dropout: dropout rate everywhere.

    Inputs (dict):
        token_ids: (B, T) int.
        padding_mask: (B, T) bool, True for real tokens (only the last
            segment of a text should hold padding: memory is taken as real).
        memories: (B, L, M0, D) float, M0 <= memory_length, from the
            previous call or `initial_memories(batch_size)` (M0 = 0).

    Returns:
        A dict: `logits` (B, T, V) float32 and `memories` (B, L,
        min(M0 + T, memory_length), D), the memories for the next segment.
        Pass them back as they come (tensors) or as NumPy: the model
        converts a dict that mixes both.

    Training with memories: the loss goes on `logits` only, by name, with
    no placeholder for `memories` (they carry no gradient):

        model.compile(optimizer="adam", loss={"logits": keras.losses.
            SparseCategoricalCrossentropy(from_logits=True)})
        model.fit({"token_ids": ids, "padding_mask": mask,
                   "memories": memories}, {"logits": labels})

    Carrying memories from batch to batch (a stream split into segments)
    needs a loop over segments; `recipes/transformer_xl_memory.py` is one,
    and `generate` carries them across the prompt's segments.

    Example:

    >>> import numpy as np
    >>> from kzoo import TransformerXLLM
    >>> lm = TransformerXLLM(50, 2, 2, 16, 32, memory_length=8)
    >>> mem = lm.initial_memories(2)
    >>> ids = np.ones((2, 4), "int32")
    >>> out = lm({"token_ids": ids, "padding_mask": ids > 0, "memories": mem})
    >>> tuple(out["logits"].shape), tuple(out["memories"].shape)
    ((2, 4, 50), (2, 2, 4, 16))
    >>> out = lm({"token_ids": ids, "padding_mask": ids > 0,
    ...           "memories": out["memories"]})  # fed back as it came
    >>> tuple(out["memories"].shape)
    (2, 2, 8, 16)
    >>> lm.generate({"token_ids": ids, "padding_mask": ids > 0}, max_length=7).shape
    (2, 7)
    """

    SIZES = {
        "tiny": {"num_layers": 2, "num_heads": 2, "hidden_dim": 64,
                 "intermediate_dim": 256, "memory_length": 32},
        "base": {"num_layers": 16, "num_heads": 10, "hidden_dim": 410,
                 "intermediate_dim": 2100, "memory_length": 150},
        "large": {"num_layers": 18, "num_heads": 16, "hidden_dim": 1024,
                  "intermediate_dim": 4096, "memory_length": 384},
    }
    SIZES_SOURCE = "Dai et al. 2019, WikiText-103 base and large; tiny is kzoo's"
    DATA_ARGUMENTS = {"vocabulary_size": 267735}

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        memory_length=64,
        dropout=0.1,
        dtype=None,
        **kwargs,
    ):
        check_model_sizes(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim)
        check_positive_int("memory_length", memory_length)
        check_rate("dropout", dropout)

        # === Layers ===
        self.token_embedding = keras.layers.ReversibleEmbedding(
            vocabulary_size,
            hidden_dim,
            reverse_dtype="float32",
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
            dtype=dtype,
            name="token_embedding",
        )
        self.embeddings_dropout = Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_layers = [
            TransformerXLBlock(
                num_heads, intermediate_dim, dropout=dropout, dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]

        # === Functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="bool", name="padding_mask")
        memories = keras.Input(
            shape=(num_layers, None, hidden_dim), dtype="float32", name="memories"
        )
        x = self.embeddings_dropout(self.token_embedding(token_ids))  # (B, T, D)
        new_memories = []
        for i, layer in enumerate(self.transformer_layers):
            memory = memories[:, i]  # (B, M0, D)
            history = ops.concatenate([ops.cast(memory, x.dtype), x], axis=1)
            new_memories.append(
                ops.stop_gradient(ops.cast(history[:, -memory_length:], "float32"))
            )
            x = layer(x, memory=memory, padding_mask=padding_mask)  # (B, T, D)
        logits = self.token_embedding(x, reverse=True)  # (B, T, V) float32
        new_memories = ops.stack(new_memories, axis=1)  # (B, L, M, D)
        super().__init__(
            inputs={
                "token_ids": token_ids,
                "padding_mask": padding_mask,
                "memories": memories,
            },
            outputs={"logits": logits, "memories": new_memories},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.memory_length = memory_length
        self.dropout = dropout

    def initial_memories(self, batch_size):
        """Empty memories (B, L, 0, D) for the first segment."""
        return np.zeros((batch_size, self.num_layers, 0, self.hidden_dim), "float32")

    def __call__(self, inputs, *args, **kwargs):
        # Memories come back as tensors and ids are often NumPy; Keras
        # refuses a dict that mixes the two, so concrete values become
        # tensors here (symbolic inputs pass through).
        if isinstance(inputs, dict) and not any(
            isinstance(v, keras.KerasTensor) for v in inputs.values()
        ):
            inputs = {k: ops.convert_to_tensor(v) for k, v in inputs.items()}
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        validate_token_inputs(inputs, ["token_ids"], [("padding_mask", "token_ids")])
        if "memories" not in inputs:
            raise ValueError(
                "inputs miss `memories`; pass `initial_memories(batch_size)` "
                f"for the first segment; received keys {sorted(inputs)}"
            )
        ids_shape = static_shape(inputs["token_ids"])
        check_same_dims(
            "memories",
            static_shape(inputs["memories"]),
            (ids_shape[0], self.num_layers, None, self.hidden_dim),
            "(batch_size, num_layers, memory_length, hidden_dim)",
        )
        mem_len = static_shape(inputs["memories"])[2]
        if mem_len is not None and mem_len > self.memory_length:
            raise ValueError(
                f"`memories` must hold at most memory_length={self.memory_length} "
                f"positions; received {mem_len}"
            )
        return super().call(inputs, training=training, mask=mask)

    def generate(
        self, inputs, max_length=None, sampler="greedy", stop_token_ids=None,
        padding_token_id=0, segment_length=None, memories=None,
    ):
        """Continues prompts, carrying the memory across segments.

        The contract of `kzoo.models.generation`. The first P0 - 1 prompt
        tokens (P0: the shortest prompt in the batch) are fed in segments
        of `segment_length`, each with the memories of the one before;
        then every further token (the rest of the prompts, then each new
        token) is a one-token segment attending to the memories, so a step
        costs O(memory_length), not O(length). The memories change shape
        while they fill, so the sampler loop runs eagerly, one compiled
        model call per token (compiled once per memory length).

        Args:
            inputs: dict with `token_ids` (B, P) int and `padding_mask`
                (B, P) bool (right-padded prompts, each with a token at
                position 0), or a bare (B, P) array.
            max_length: total output length, prompt included; default
                (None) P + `memory_length`.
            sampler: "greedy", "top_k", "top_p", "random", "beam" or a
                sampler object.
            stop_token_ids: tuple of ids, or None.
            segment_length: prompt chunk length (default: all P0 - 1
                tokens in one segment).
            memories: optional starting memories (B, L, M0, D), e.g. the
                `memories` output of the text before the prompt.

        Returns:
            (B, max_length) int32 NumPy array, the prompt tokens kept.
        """
        max_length = generation.resolve_max_length(
            max_length, (generation.prompt_length(inputs) or 0) + self.memory_length)
        check_non_negative_int("padding_token_id", padding_token_id)
        stop_token_ids = generation.check_stop_token_ids(stop_token_ids, self.vocabulary_size)
        token_ids, mask = generation.prompt_inputs(
            inputs, max_length, self.vocabulary_size, padding_token_id)
        batch = token_ids.shape[0]
        if batch == 0:
            return token_ids
        # Positions below `common` hold prompt tokens in every row.
        common = int(np.min(np.argmin(np.pad(mask, ((0, 0), (0, 1))), axis=1)))
        segment_length = check_positive_int(
            "segment_length", segment_length or max(common - 1, 1))
        if memories is None:
            memories = self.initial_memories(batch)

        run = self._segment_function()

        for start in range(0, common - 1, segment_length):
            _, memories = run(token_ids[:, start : min(start + segment_length, common - 1)],
                              memories)

        def next(prompt, cache, index):
            last = ops.expand_dims(ops.take(prompt, index - 1, axis=1), 1)  # (B, 1)
            logits, cache = run(last, cache)
            return logits[:, 0], None, cache

        sampler = generation.resolve_sampler(self, sampler)
        with generation.python_loop(sampler):
            out = generation.sample(sampler, next, token_ids, mask, ops.convert_to_tensor(memories),
                                    common, stop_token_ids, padding_token_id, model=self)
        return generation.to_numpy(out)

    def _segment_function(self):
        """`(segment (B, T), memories) -> (logits, new memories)`, compiled
        once per shape (the memory grows until it holds `memory_length`
        positions, then keeps its shape) and kept off the tracked state
        (`generation.function_cache`)."""
        functions = generation.function_cache(self)
        if "segment" not in functions:

            def segment_step(segment, memories):
                out = self(
                    {"token_ids": segment,
                     "padding_mask": ops.ones(ops.shape(segment), "bool"),
                     "memories": memories},
                    training=False,
                )
                return out["logits"], out["memories"]

            functions["segment"] = compiled_function(
                segment_step,
                read_variables=self.trainable_variables + self.non_trainable_variables,
            )
        return functions["segment"]

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "memory_length": self.memory_length,
            "dropout": self.dropout,
        }
