"""Decoding for export: each model's step function, driven by the samplers
of `kzoo.models.generation`.

TensorFlow only (the loops are traced into SavedModel signatures with
dynamic batch and source length). They do not call `model.generate`: each
supported model has a thin adapter here that builds the model's `next(prompt,
cache, index)` step (keras-hub's sampler protocol) from its public layers
and cache methods; the loop itself is the one every `generate` runs
(`generation.sample` with the same sampler objects), so a change to
`generate`'s Python signature does not change what is exported.
`tests/export/test_export.py` checks that each adapter equals the model's
own `generate` (greedy and beam search), so a change in the model's decoding
that the adapter misses fails there.

Search: greedy (keras-hub's `GreedySampler`), or for `beam_size` K > 1
kzoo's `generation.BeamSampler(num_beams=K, length_penalty=alpha)`: beam
search ranked by the GNMT length penalty `log p / ((5 + n) / 6) ** alpha`
(Wu et al., 2016), the same for every model; the LM also takes keras-hub's
top-k, top-p and random samplers.

Letters: B batch, S source length, L max_length, V target vocabulary, H
hidden size.

- `GRUTranslatorDecoder`: over the GRU's embeddings, `RecurrentEncoder`,
  bridges, `AttentionDecoder.step` and output Dense; the recurrent state is
  the sampler's cache, as in `GRUTranslator.generate`.
- `TransformerSeq2SeqDecoder` and `TransformerLMDecoder`: over
  `call_with_cache`, as their `generate`.
"""

import keras
from keras import ops

from kzoo.models import generation

NEG = -1e9  # log-probability of an impossible token, finite in float32
SAMPLERS = ("greedy", "beam", "top_k", "top_p", "random")


def make_sampler(sampler, beam_size=1, seed=None, length_penalty=0.6):
    """A sampler object: `beam_size > 1` (or "beam") is kzoo's
    `generation.BeamSampler(num_beams=beam_size, length_penalty)`, the beam
    search of every model's `generate`; the others are keras-hub's."""
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
        return generation.BeamSampler(num_beams=beam_size, length_penalty=length_penalty)
    if sampler == "greedy":
        return keras_hub.samplers.GreedySampler()
    cls = {
        "top_k": keras_hub.samplers.TopKSampler,
        "top_p": keras_hub.samplers.TopPSampler,
        "random": keras_hub.samplers.RandomSampler,
    }[sampler]
    return cls(seed=seed)


def describe_search(sampler):
    """What `sampler` does, in words and numbers, for `decoding` dicts."""
    if isinstance(sampler, generation.BeamSampler):
        return {"search": "beam search, GNMT length penalty",
                "length_penalty": sampler.length_penalty}
    return {"search": "greedy" if type(sampler).__name__ == "GreedySampler"
            else type(sampler).__name__, "length_penalty": None}


class Seq2SeqDecoder:
    """Adapter interface: `generate(token_ids, padding_mask) -> (B, L)` ids.

    The result has no start token; each row is its pieces, the end token,
    then padding id 0. A subclass supplies `decoder(token_ids, padding_mask,
    max_length) -> (next, cache)`, keras-hub's sampler protocol, which
    `sampler` (greedy, or kzoo's `BeamSampler` for `beam_size > 1`) runs
    from the start token. `variables` are the decoding state variables to
    save with the SavedModel (a sampler's seed), besides the model's.
    """

    jit_compile_default = False  # whether XLA pays for this model's loop

    def __init__(self, model, max_length, start_token_id, end_token_id, beam_size=1,
                 length_penalty=0.6):
        self.model = model
        self.max_length = max_length
        self.start_token_id = start_token_id
        self.end_token_id = end_token_id
        self.beam_size = beam_size
        self.length_penalty = length_penalty
        self.sampler = make_sampler("greedy", beam_size, length_penalty=length_penalty)
        self.variables = tuple(self.sampler.variables)

    def describe(self):
        return {"beam_size": self.beam_size, **describe_search(self.sampler)}

    def decoder(self, token_ids, padding_mask, max_length):
        """The model's `(next, cache)` for a (B, L) buffer; each subclass's."""
        raise NotImplementedError

    def generate(self, token_ids, padding_mask):
        L = self.max_length + 1  # the start token, then max_length pieces
        next, cache = self.decoder(token_ids, ops.cast(padding_mask, "bool"), L)
        prompt, prompt_mask = generation.decoder_prompt(
            ops.shape(token_ids)[0], L, self.start_token_id)
        out = generation.sample(
            self.sampler, next, prompt, prompt_mask, cache, 1, (self.end_token_id,), 0,
            self.model)
        return out[:, 1:]  # (B, max_length) without the start token


class GRUTranslatorDecoder(Seq2SeqDecoder):
    """`GRUTranslator`'s decoding, from its layers: embeddings,
    `RecurrentEncoder`, bridges, `AttentionDecoder.step`, output Dense; the
    recurrent state is the sampler's cache, as in `GRUTranslator.generate`."""

    @property
    def jit_compile_default(self):
        return self.model.use_cudnn is False

    def encode(self, token_ids, padding_mask):
        """-> memory (B, S, H), mask (B, S), state list."""
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

    def decoder(self, token_ids, padding_mask, max_length):
        """Cache: the decoder state only, the part that differs between beams.

        Memory, projected memory and source mask are the same for every beam
        of an example, so `next` holds them already repeated K times (row
        b * K + j for beam j of example b, `BeamSampler`'s layout) instead of
        in the cache, which the sampler reorders every step. Same ids as
        `GRUTranslator.generate` (whose cache holds all four); measured on 2
        CPU cores, 4 beams, batch 32, hidden 128: 995 sentences/s against
        351 with all four in the cache.
        """
        memory, mask, state = self.encode(token_ids, padding_mask)
        projected = self.model.decoder.project_memory(memory)
        k = getattr(self.sampler, "num_beams", 1)
        if k > 1:
            memory, projected, mask = (ops.repeat(x, k, axis=0)
                                       for x in (memory, projected, mask))

        def next(prompt, state, index):
            prev = ops.take(prompt, index - 1, axis=1)  # (B*K,)
            log_probs, state = self.step(prev, state, memory, projected, mask)
            return log_probs, None, state

        return next, state


class TransformerSeq2SeqDecoder(Seq2SeqDecoder):
    """`TransformerSeq2Seq`'s decoding over `encode` and `call_with_cache`."""

    def __init__(self, model, max_length, start_token_id, end_token_id, beam_size=1,
                 length_penalty=0.6):
        if max_length + 1 > model.max_sequence_length:
            raise ValueError(
                f"`max_output_length` + 1 (the start token) must be <= the model's "
                f"max_sequence_length ({model.max_sequence_length}); received "
                f"max_output_length={max_length}"
            )
        super().__init__(model, max_length, start_token_id, end_token_id, beam_size,
                         length_penalty)

    def decoder(self, token_ids, padding_mask, max_length):
        """The model's own `cached_decoder`: (self-attention cache,
        cross-attention keys/values, source mask as int32 so that beams
        repeat it)."""
        return self.model.cached_decoder(token_ids, padding_mask, max_length)


class TransformerLMDecoder:
    """A sampler over `TransformerLM.call_with_cache`.

    `generate(prompt (B, L), prompt_mask (B, L))` with right-padded prompts
    already padded to `max_length`; returns (B, L) ids, prompt included,
    padding after the end token.
    """

    def __init__(self, model, max_length, end_token_id=None, sampler="greedy",
                 beam_size=1, seed=None, length_penalty=0.6):
        if model.position_encoding == "learned" and max_length > model.max_sequence_length:
            raise ValueError(
                f"`max_length` must be <= the model's max_sequence_length "
                f"({model.max_sequence_length}, its learned positions); received {max_length}"
            )
        self.model = model
        self.max_length = max_length
        self.end_token_id = end_token_id
        self.sampler = make_sampler(sampler, beam_size, seed, length_penalty)
        self.sampler_name = sampler if isinstance(sampler, str) else type(sampler).__name__
        self.beam_size = beam_size
        self.variables = tuple(self.sampler.variables)

    def describe(self):
        length_penalty = describe_search(self.sampler)["length_penalty"]
        return {"sampler": self.sampler_name, "beam_size": self.beam_size,
                "length_penalty": length_penalty, "max_length": self.max_length}

    def generate(self, prompt, prompt_mask):
        m = self.model
        cache = m.empty_cache(ops.shape(prompt)[0], self.max_length)

        def next(prompt, cache, index):
            rows = ops.shape(prompt)[0]
            last = ops.slice(prompt, [0, index - 1], [rows, 1])  # (B, 1)
            logits, cache = m.call_with_cache(last, cache, index - 1)
            return logits[:, 0], None, cache

        end = self.end_token_id
        return generation.sample(
            self.sampler, next, prompt, prompt_mask, cache, 1,
            None if end is None else (end,), 0, m)


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
