"""Decoding loops for export, written over each model's step functions.

TensorFlow only (the loops are traced into SavedModel signatures with
dynamic batch and source length). They do not call `model.generate`: each
supported model has a thin adapter here that builds the same computation as
the model's own decoding from the model's public layers and cache methods,
so a change to `generate`'s Python signature does not change what is
exported. `tests/export/test_export.py` checks that each adapter equals the
model's own `generate` (greedy and beam search), so a change in the model's
decoding that the adapter misses fails there.

Letters: B batch, S source length, K beam size, L max_length, V target
vocabulary, H hidden size.

- `GRUTranslatorDecoder`: greedy, or beam search ranked by the GNMT length
  penalty `log p / ((5 + len) / 6) ** alpha` (Wu et al., 2016), the loops of
  `GRUTranslator.generate`, over its embeddings, `RecurrentEncoder`,
  bridges, `AttentionDecoder.step` and output Dense.
- `TransformerSeq2SeqDecoder` and `TransformerLMDecoder`: a keras-hub
  sampler over `call_with_cache` (greedy, beam, top-k, top-p, random), as
  their `generate`; keras-hub's beam search ranks by the sum of
  log-probabilities (no length penalty).
"""

import keras
from keras import ops

NEG = -1e9  # log-probability of an impossible hypothesis, finite in float32
SAMPLERS = ("greedy", "beam", "top_k", "top_p", "random")


def mask_after_end(token_ids, end_token_id, keep_mask, padding_token_id=0):
    """Tokens after the first `end_token_id` outside `keep_mask` -> padding.

    token_ids (B, L) int; keep_mask (B, L) bool, True for tokens never
    treated as an end or replaced (a prompt). The end token itself is kept.
    """
    is_end = ops.logical_and(ops.equal(token_ids, end_token_id), ops.logical_not(keep_mask))
    is_end = ops.cast(is_end, "int32")
    ends_before = ops.cumsum(is_end, axis=1) - is_end  # (B, L)
    after = ops.logical_and(ends_before > 0, ops.logical_not(keep_mask))
    return ops.where(after, ops.cast(padding_token_id, token_ids.dtype), token_ids)


def gnmt_length_penalty(length, alpha):
    """`((5 + length) / 6) ** alpha` (Wu et al., 2016)."""
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


def make_sampler(sampler, beam_size=1, seed=None):
    """A keras-hub sampler: `beam_size > 1` is beam search with K beams."""
    import keras_hub

    if isinstance(sampler, keras_hub.samplers.Sampler):
        return sampler
    if sampler not in SAMPLERS:
        raise ValueError(
            f"`sampler` must be one of {SAMPLERS} or a keras_hub.samplers.Sampler; "
            f"received {sampler!r}"
        )
    if sampler == "beam" or beam_size > 1:
        if sampler not in ("greedy", "beam"):
            raise ValueError(
                f"`beam_size` > 1 is beam search; it cannot be combined with "
                f"sampler={sampler!r}; received beam_size={beam_size}"
            )
        return keras_hub.samplers.BeamSampler(num_beams=beam_size)
    if sampler == "greedy":
        return keras_hub.samplers.GreedySampler()
    cls = {
        "top_k": keras_hub.samplers.TopKSampler,
        "top_p": keras_hub.samplers.TopPSampler,
        "random": keras_hub.samplers.RandomSampler,
    }[sampler]
    return cls(seed=seed)


class Seq2SeqDecoder:
    """Adapter interface: `generate(token_ids, padding_mask) -> (B, L)` ids.

    The result has no start token; each row is its pieces, the end token,
    then padding id 0. `variables` are the decoding state variables to save
    with the SavedModel (a sampler's seed), besides the model's.
    """

    search = ""  # a words description for metrics and docs
    variables = ()
    jit_compile_default = False  # whether XLA pays for this model's loop

    def __init__(self, model, max_length, start_token_id, end_token_id, beam_size=1,
                 length_penalty=0.6):
        self.model = model
        self.max_length = max_length
        self.start_token_id = start_token_id
        self.end_token_id = end_token_id
        self.beam_size = beam_size
        self.length_penalty = length_penalty

    def describe(self):
        return {"beam_size": self.beam_size, "search": self.search}


class GRUTranslatorDecoder(Seq2SeqDecoder):
    """Greedy and GNMT beam search for `GRUTranslator`, from its layers."""

    @property
    def jit_compile_default(self):
        return self.model.use_cudnn is False

    def describe(self):
        search = "greedy" if self.beam_size == 1 else "beam search, GNMT length penalty"
        return {"beam_size": self.beam_size, "length_penalty":
                self.length_penalty if self.beam_size > 1 else None, "search": search}

    def encode(self, token_ids, padding_mask):
        """-> memory (B, S, H), projected memory, mask (B, S), state list."""
        m = self.model
        mask = ops.cast(padding_mask, "bool")
        x = m.source_embedding(token_ids)  # (B, S, E)
        outputs, *final = m.encoder(x, padding_mask=mask, training=False)
        memory = m.memory_projection(outputs)  # (B, S, H)
        state = [bridge(f) for bridge, f in zip(m.bridges, final)]  # (B, H) each
        return memory, mask, state

    def step(self, prev, state, memory, projected, mask):
        """(B,) previous tokens -> log-probabilities (B, V), new state."""
        m = self.model
        y = m.target_embedding(prev)  # (B, E)
        out, _, state = m.decoder.step(y, state, memory, projected, mask)
        logits = ops.cast(m.logits_dense(out), "float32")  # (B, V)
        log_probs = ops.log_softmax(logits, axis=-1)
        is_pad = ops.arange(m.target_vocabulary_size) == 0  # never before the end
        return ops.where(is_pad, NEG, log_probs), state

    def generate(self, token_ids, padding_mask):
        memory, mask, state = self.encode(token_ids, padding_mask)
        if self.beam_size == 1:
            return self._greedy(memory, mask, state)
        return self._beam(memory, mask, state)

    def _greedy(self, memory, mask, state):
        L, end = self.max_length, self.end_token_id
        batch = ops.shape(memory)[0]
        projected = self.model.decoder.project_memory(memory)
        positions = ops.arange(L, dtype="int32")[None, :]  # (1, L)

        def cond(i, tokens, prev, finished, state):
            return ops.logical_and(i < L, ops.logical_not(ops.all(finished)))

        def body(i, tokens, prev, finished, state):
            log_probs, state = self.step(prev, state, memory, projected, mask)
            nxt = ops.cast(ops.argmax(log_probs, axis=-1), "int32")  # (B,)
            nxt = ops.where(finished, 0, nxt)
            tokens = ops.where(positions == i, nxt[:, None], tokens)  # (B, L)
            finished = ops.logical_or(finished, nxt == end)
            return i + 1, tokens, nxt, finished, state

        loop_vars = (
            ops.convert_to_tensor(0, "int32"),
            ops.zeros((batch, L), "int32"),
            ops.full((batch,), self.start_token_id, "int32"),
            ops.zeros((batch,), "bool"),
            state,
        )
        return ops.while_loop(cond, body, loop_vars)[1]

    def _beam(self, memory, mask, state):
        L, k, end = self.max_length, self.beam_size, self.end_token_id
        alpha = float(self.length_penalty)
        vocab = self.model.target_vocabulary_size
        batch = ops.shape(memory)[0]
        # Beams live in the batch axis: row b * K + j is beam j of example b.
        memory = ops.repeat(memory, k, axis=0)  # (B*K, S, H)
        mask = ops.repeat(mask, k, axis=0)  # (B*K, S)
        state = [ops.repeat(s, k, axis=0) for s in state]  # (B*K, H)
        projected = self.model.decoder.project_memory(memory)
        positions = ops.arange(L, dtype="int32")  # (L,)
        pad_only = ops.where(ops.arange(vocab) == 0, 0.0, NEG)  # (V,) finished beams
        batch_offsets = ops.arange(batch, dtype="int32")[:, None] * k  # (B, 1)

        def cond(i, tokens, scores, lengths, finished, prev, state):
            return ops.logical_and(i < L, ops.logical_not(ops.all(finished)))

        def body(i, tokens, scores, lengths, finished, prev, state):
            log_probs, state = self.step(prev, state, memory, projected, mask)
            log_probs = ops.reshape(log_probs, (batch, k, vocab))  # (B, K, V)
            log_probs = ops.where(finished[..., None], pad_only, log_probs)
            total = scores[..., None] + log_probs  # (B, K, V)
            new_lengths = lengths + ops.cast(ops.logical_not(finished), "int32")
            normalized = total / gnmt_length_penalty(new_lengths, alpha)[..., None]
            _, top = ops.top_k(ops.reshape(normalized, (batch, k * vocab)), k)
            beam = top // vocab  # (B, K) the beam each winner extends
            token = ops.cast(top % vocab, "int32")  # (B, K)
            scores = ops.take_along_axis(ops.reshape(total, (batch, -1)), top, 1)
            lengths = ops.take_along_axis(new_lengths, beam, axis=1)
            finished = ops.take_along_axis(finished, beam, axis=1)
            token = ops.where(finished, 0, token)
            finished = ops.logical_or(finished, token == end)
            tokens = ops.take_along_axis(tokens, beam[..., None], axis=1)
            tokens = ops.where(positions[None, None, :] == i, token[..., None], tokens)
            rows = ops.reshape(batch_offsets + ops.cast(beam, "int32"), (-1,))
            state = [ops.take(s, rows, axis=0) for s in state]
            return i + 1, tokens, scores, lengths, finished, ops.reshape(token, (-1,)), state

        first_beam = ops.arange(k) == 0
        loop_vars = (
            ops.convert_to_tensor(0, "int32"),
            ops.zeros((batch, k, L), "int32"),
            ops.tile(ops.where(first_beam, 0.0, NEG)[None, :], (batch, 1)),
            ops.zeros((batch, k), "int32"),
            ops.zeros((batch, k), "bool"),
            ops.full((batch * k,), self.start_token_id, "int32"),
            state,
        )
        tokens = ops.while_loop(cond, body, loop_vars)[1]  # (B, K, L)
        return tokens[:, 0]  # top_k sorts: beam 0 is the best


class TransformerSeq2SeqDecoder(Seq2SeqDecoder):
    """A keras-hub sampler over `TransformerSeq2Seq.call_with_cache`."""

    def __init__(self, model, max_length, start_token_id, end_token_id, beam_size=1,
                 length_penalty=0.6):
        super().__init__(model, max_length, start_token_id, end_token_id, beam_size,
                         length_penalty)
        if max_length + 1 > model.max_sequence_length:
            raise ValueError(
                f"`max_output_length` + 1 (the start token) must be <= the model's "
                f"max_sequence_length ({model.max_sequence_length}); received "
                f"max_output_length={max_length}"
            )
        self.sampler = make_sampler("greedy", beam_size)
        self.variables = tuple(self.sampler.variables)

    def describe(self):
        search = ("greedy" if self.beam_size == 1 else
                  "beam search (keras-hub BeamSampler: sum of log-probabilities, "
                  "no length penalty)")
        return {"beam_size": self.beam_size, "length_penalty": None, "search": search}

    def generate(self, token_ids, padding_mask):
        m = self.model
        L = self.max_length + 1  # the start token, then max_length pieces
        batch = ops.shape(token_ids)[0]
        mask = ops.cast(padding_mask, "bool")
        encoded = m.encode(token_ids, mask, training=False)
        cache = (
            m.empty_cache(batch, L),
            m.cross_attention_cache(encoded),
            ops.cast(mask, "int32"),  # in the cache, so that beams repeat it
        )
        prompt = ops.concatenate(
            [ops.full((batch, 1), self.start_token_id, "int32"),
             ops.zeros((batch, L - 1), "int32")], axis=1,
        )  # (B, L)
        prompt_mask = ops.concatenate(
            [ops.ones((batch, 1), "bool"), ops.zeros((batch, L - 1), "bool")], axis=1
        )

        def next(prompt, cache, index):
            self_cache, cross_cache, enc_mask = cache
            rows = ops.shape(prompt)[0]
            last = ops.slice(prompt, [0, index - 1], [rows, 1])  # (B, 1)
            logits, self_cache = m.call_with_cache(
                last, ops.cast(enc_mask, "bool"), self_cache, cross_cache, index - 1
            )
            return logits[:, 0], None, (self_cache, cross_cache, enc_mask)

        out = self.sampler(
            next, prompt, cache=cache, index=1, mask=prompt_mask,
            stop_token_ids=[self.end_token_id], model=m,
        )
        out = mask_after_end(out, self.end_token_id, prompt_mask)
        return out[:, 1:]  # (B, max_length) without the start token


class TransformerLMDecoder:
    """A keras-hub sampler over `TransformerLM.call_with_cache`.

    `generate(prompt (B, L), prompt_mask (B, L))` with right-padded prompts
    already padded to `max_length`; returns (B, L) ids, prompt included,
    padding after the end token.
    """

    def __init__(self, model, max_length, end_token_id=None, sampler="greedy",
                 beam_size=1, seed=None):
        if model.position_encoding == "learned" and max_length > model.max_sequence_length:
            raise ValueError(
                f"`max_length` must be <= the model's max_sequence_length "
                f"({model.max_sequence_length}, its learned positions); received {max_length}"
            )
        self.model = model
        self.max_length = max_length
        self.end_token_id = end_token_id
        self.sampler = make_sampler(sampler, beam_size, seed)
        self.sampler_name = sampler if isinstance(sampler, str) else type(sampler).__name__
        self.beam_size = beam_size
        self.variables = tuple(self.sampler.variables)

    def describe(self):
        return {"sampler": self.sampler_name, "beam_size": self.beam_size,
                "max_length": self.max_length}

    def generate(self, prompt, prompt_mask):
        m = self.model
        cache = m.empty_cache(ops.shape(prompt)[0], self.max_length)

        def next(prompt, cache, index):
            rows = ops.shape(prompt)[0]
            last = ops.slice(prompt, [0, index - 1], [rows, 1])  # (B, 1)
            logits, cache = m.call_with_cache(last, cache, index - 1)
            return logits[:, 0], None, cache

        end = self.end_token_id
        out = self.sampler(
            next, prompt, cache=cache, index=1, mask=prompt_mask,
            stop_token_ids=None if end is None else [end], model=m,
        )
        if end is None:
            return out
        return mask_after_end(out, end, prompt_mask)


def seq2seq_decoder(model, **options):
    """The adapter for `model`; a `ValueError` names the supported models."""
    from kzoo.models import GRUTranslator, TransformerSeq2Seq

    if isinstance(model, GRUTranslator):
        return GRUTranslatorDecoder(model, **options)
    if isinstance(model, TransformerSeq2Seq):
        return TransformerSeq2SeqDecoder(model, **options)
    raise ValueError(
        "export supports the sequence-to-sequence models GRUTranslator and "
        f"TransformerSeq2Seq; received {type(model).__name__}"
    )


def check_tensorflow(what):
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"{what} needs the TensorFlow backend (tokenizers and SavedModel export "
            f"run in TensorFlow); received backend {keras.backend.backend()!r}. "
            "Set KERAS_BACKEND=tensorflow."
        )
