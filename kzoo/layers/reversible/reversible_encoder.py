"""A stack of reversible residual blocks with a memory-saving backward pass.

A `ReversibleBlock` maps (x1, x2) to (y1, y2) with

    y1 = x1 + F(x2)          x2 = y2 - G(y1)
    y2 = x2 + G(y1)          x1 = y1 - F(x2)

so the inputs of a block can be recomputed from its outputs. A
`ReversibleEncoder` runs a stack of blocks inside one custom gradient: the
forward pass keeps no activation, and the backward pass walks the stack from
the top, recomputing each block's inputs from its outputs and the gradients
of F and G from those recomputed inputs. Memory is then that of one block
plus the stack's output, whatever the depth.

The backward pass needs a vector-Jacobian product of F and G with respect to
their inputs and weights, and on JAX each block's backward step must be a
sub-computation of its own (or XLA's scheduler keeps per-block buffers alive
for the whole pass). Keras 3 has no backend-neutral form of either; both
live in `kzoo/backend/reversible.py`, dispatched on
`keras.backend.backend()`.
Everything else is `keras.ops`.
"""

import keras
from keras import ops

from kzoo.backend.reversible import separate_computation
from kzoo.backend.reversible import vjp
from kzoo.layers.reversible.reversible_block import ReversibleBlock
from kzoo.utils.validation import check_rank


@keras.saving.register_keras_serializable(package="kzoo")
class ReversibleEncoder(keras.layers.Layer):
    """A stack of `ReversibleBlock`s whose backward pass recomputes activations.

    From "Reformer: The Efficient Transformer" (Kitaev, Kaiser and Levskaya,
    2020), section 3, after RevNets (Gomez et al., 2017). The input is
    duplicated, `x1 = x2 = inputs`, the blocks run in order, and the output
    is `concat([y1, y2], -1)` as in the Reformer.

    With `memory_saving=True` the whole stack is one custom gradient
    (`keras.ops.custom_gradient`): the forward pass stores no activation of
    F or G and the backward pass reconstructs every block's inputs from its
    outputs. With `memory_saving=False` the same blocks run under ordinary
    autodiff (same values and gradients, more memory). The recomputation
    sees the same function as the forward pass even when the blocks are
    random: each block's non-trainable state (the seed generators of
    dropout, or of LSH rotations with `redraw_rotations=True`) is read
    before its forward call and handed back to its recomputation, with the
    same `training` flag, so dropout masks and rotations are replayed
    exactly. State that a call changes in other ways (batch statistics)
    would be replayed from its value before the call as well.

    Args:
        blocks: list of `ReversibleBlock`.
        memory_saving: whether to use the recomputing backward pass.

    Call arguments:
        inputs: (B, T, D).
        padding_mask: optional (B, T) bool, passed to every block's `f`.
        use_causal_mask: passed to every block's `f` when True.
        training: passed to every block (dropout inside F and G).

    Returns:
        (B, T, 2 * D).

    Example:

    >>> import keras
    >>> from kzoo.layers import ReversibleBlock, ReversibleEncoder
    >>> blocks = [ReversibleBlock(keras.layers.Dense(8, activation="tanh"),
    ...                           keras.layers.Dense(8)) for _ in range(2)]
    >>> tuple(ReversibleEncoder(blocks)(keras.random.normal((2, 4, 8))).shape)
    (2, 4, 16)
    """

    def __init__(self, blocks, memory_saving=True, **kwargs):
        super().__init__(**kwargs)
        blocks = list(blocks)
        if not blocks or not all(isinstance(b, ReversibleBlock) for b in blocks):
            raise ValueError(
                "`blocks` must be a non-empty list of ReversibleBlock; "
                f"received {blocks!r}"
            )
        self.blocks = blocks
        self.memory_saving = bool(memory_saving)

    def build(self, inputs_shape):
        check_rank("inputs", inputs_shape, 3, "(batch, sequence_length, dim)")
        for block in self.blocks:
            if not block.built:
                block.build(inputs_shape)

    def _plain(self, x1, x2, f_kwargs, training):
        for block in self.blocks:
            # `training` reaches F and G through the call context.
            x1, x2 = block(x1, x2, training=training, **f_kwargs)
        return x1, x2

    def _memory_saving(self, x1, x2, fkw, training):
        blocks = self.blocks

        def apply(layer, weights, state, x, kwargs):
            """`layer(x)` on the given weights and non-trainable state.

            Called through `__call__`, so `training` reaches every sublayer
            in the forward pass and in the recomputation alike. Returns the
            output (in x's dtype) and the state after the call.
            """
            mapping = list(zip(layer.trainable_variables, weights)) + list(
                zip(layer.non_trainable_variables, state)
            )
            # A name scope of ours: in TensorFlow's backward pass the layer's
            # own would be a root scope, which may not start with "_".
            with keras.name_scope("reversible"), keras.StatelessScope(
                state_mapping=mapping
            ) as scope:
                out = layer(x, training=training, **kwargs)
            new_state = [
                scope.get_current_value(v) for v in layer.non_trainable_variables
            ]
            return ops.cast(out, x.dtype), new_state

        def values(variables, stop=False):
            out = [ops.convert_to_tensor(v.value) for v in variables]
            return [ops.stop_gradient(v) for v in out] if stop else out

        # Forward pass outside the custom gradient, on stopped inputs and
        # weights (autodiff keeps nothing of it). Each block's non-trainable
        # state (dropout seeds, ...) is read before its call and kept for the
        # backward pass, which recomputes the block with that same state:
        # the same dropout masks and random rotations as this pass.
        # (`* 1`: a copy; on TensorFlow a tensor read from a variable can
        # share its buffer and change with the `assign` below.)
        states = []
        y1, y2 = ops.stop_gradient(x1), ops.stop_gradient(x2)
        for block in blocks:
            f_state = [v * 1 for v in values(block.f.non_trainable_variables)]
            g_state = [v * 1 for v in values(block.g.non_trainable_variables)]
            states.append((f_state, g_state))
            f_out, f_new = apply(
                block.f, values(block.f.trainable_variables, True), f_state, y2, fkw
            )
            y1 = y1 + f_out
            g_out, g_new = apply(
                block.g, values(block.g.trainable_variables, True), g_state, y1, {}
            )
            y2 = y2 + g_out
            for variable, value in zip(block.f.non_trainable_variables, f_new):
                variable.assign(value)
            for variable, value in zip(block.g.non_trainable_variables, g_new):
                variable.assign(value)

        counts = [
            (len(b.f.trainable_variables), len(b.g.trainable_variables)) for b in blocks
        ]

        def split(flat):
            out, i = [], 0
            for nf, ng in counts:
                out.append((list(flat[i : i + nf]), list(flat[i + nf : i + nf + ng])))
                i += nf + ng
            return out

        @ops.custom_gradient
        def run(x1, x2, y1, y2, *flat):
            per_block = split(flat)

            def grad(*upstream):
                if len(upstream) == 1:
                    upstream = upstream[0]
                dy1, dy2 = upstream
                a1, a2 = y1, y2
                weight_grads = []
                for block, (fw, gw), (f_state, g_state) in reversed(
                    list(zip(blocks, per_block, states))
                ):

                    def step(a1, a2, dy1, dy2, fw, gw, block=block,
                             f_state=f_state, g_state=g_state):
                        # G: y2 = x2 + G(y1); recompute G(y1) (the vjp's primal
                        # output), rebuild x2 from it, push dy2 through G.
                        g_out, (gy1, *gw_grads) = vjp(
                            lambda x, *w: apply(block.g, list(w), g_state, x, {})[0],
                            [a1] + gw,
                            dy2,
                        )
                        x2 = a2 - g_out
                        dy1 = dy1 + gy1
                        # F: y1 = x1 + F(x2); recompute F(x2), push dy1 through F.
                        f_out, (fx2, *fw_grads) = vjp(
                            lambda x, *w: apply(block.f, list(w), f_state, x, fkw)[0],
                            [x2] + fw,
                            dy1,
                        )
                        x1 = a1 - f_out
                        dy2 = dy2 + fx2
                        return x1, x2, dy1, dy2, fw_grads, gw_grads

                    a1, a2, dy1, dy2, fw_grads, gw_grads = separate_computation(
                        step, (a1, a2, dy1, dy2, list(fw), list(gw))
                    )
                    weight_grads = list(fw_grads) + list(gw_grads) + weight_grads
                zeros = (ops.zeros_like(y1), ops.zeros_like(y2))
                return (dy1, dy2, *zeros, *weight_grads)

            # The outputs, computed above; this function only attaches the
            # recomputing gradient to them.
            return (ops.add(y1, 0), ops.add(y2, 0)), grad

        flat = []
        for block in blocks:
            flat += values(block.f.trainable_variables)
            flat += values(block.g.trainable_variables)
        return run(x1, x2, y1, y2, *flat)

    def call(self, inputs, padding_mask=None, use_causal_mask=False, training=None):
        x1 = x2 = inputs  # (B, T, D)
        f_kwargs = ReversibleBlock.f_kwargs(padding_mask, use_causal_mask)
        if self.memory_saving:
            y1, y2 = self._memory_saving(x1, x2, f_kwargs, training)
        else:
            y1, y2 = self._plain(x1, x2, f_kwargs, training)
        return ops.concatenate([y1, y2], axis=-1)  # (B, T, 2D)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape[:-1]) + (2 * inputs_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "blocks": [keras.saving.serialize_keras_object(b) for b in self.blocks],
                "memory_saving": self.memory_saving,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["blocks"] = [
            keras.saving.deserialize_keras_object(b) for b in config["blocks"]
        ]
        return cls(**config)
