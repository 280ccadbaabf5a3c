"""Masked-LM packing and the tf.data masking pipeline (15%, 80/10/10)."""

import numpy as np
import pytest

from kzoo.data.masked_lm import mlm_dataset, pack_sequences

pytestmark = pytest.mark.tf_only

PAD, CLS, SEP, MASK = 0, 2, 3, 4


def test_pack_sequences_hand_computed():
    out = pack_sequences([[5, 6, 7], [8, 9]], 5, CLS, SEP, PAD)
    np.testing.assert_array_equal(out, [[2, 5, 6, 7, 3], [2, 8, 9, 3, 0]])
    out = pack_sequences([[5, 6, 7, 8, 9, 10]], 5, CLS, SEP, PAD)
    np.testing.assert_array_equal(out, [[2, 5, 6, 7, 3], [2, 8, 9, 10, 3]])
    with pytest.raises(ValueError, match="sequence_length"):
        pack_sequences([[5]], 2, CLS, SEP, PAD)


def test_masking_rates_and_labels():
    pytest.importorskip("tensorflow")
    rng = np.random.RandomState(0)
    n, s, vocab = 512, 16, 50
    ids = rng.randint(5, vocab, (n, s)).astype("int32")
    ids[:, 0], ids[:, -1] = CLS, SEP
    ids[::4, 12:] = PAD  # some padding
    ids[::4, 11] = SEP
    ds = mlm_dataset(ids, n, vocab, MASK, [PAD, CLS, SEP], mask_selection_length=10,
                     shuffle=False)
    x, y, w = next(iter(ds))
    x = {k: np.asarray(v) for k, v in x.items()}
    y, w = np.asarray(y), np.asarray(w)
    tokens, pos = np.asarray(x["token_ids"]), np.asarray(x["mask_positions"])
    np.testing.assert_array_equal(x["padding_mask"], ids != PAD)
    np.testing.assert_array_equal(x["segment_ids"], 0)
    real = w > 0
    rows = np.repeat(np.arange(n)[:, None], pos.shape[1], 1)
    # Labels are the original tokens at the selected positions.
    np.testing.assert_array_equal(y[real], ids[rows[real], pos[real]])
    # Special tokens are never selected; unselected tokens are unchanged.
    assert not np.isin(ids[rows[real], pos[real]], [PAD, CLS, SEP]).any()
    selected = np.zeros_like(ids, bool)
    selected[rows[real], pos[real]] = True
    np.testing.assert_array_equal(tokens[~selected], ids[~selected])
    # Per row, ceil(15% of the maskable tokens) are selected (the generator
    # rounds up: 14 maskable -> 3, 10 -> 2); the cap of 10 is not hit.
    maskable = (~np.isin(ids, [PAD, CLS, SEP])).sum(axis=1)
    np.testing.assert_array_equal(real.sum(axis=1), np.ceil(0.15 * maskable))
    # Of the selected: 80% [MASK], ~10% random (some random draws equal the
    # original, counted as unchanged), the rest unchanged.
    new = tokens[rows[real], pos[real]]
    frac_mask = np.mean(new == MASK)
    frac_same = np.mean(new == y[real])
    assert abs(frac_mask - 0.8) < 0.04, frac_mask
    assert abs(frac_same - 0.1) < 0.04, frac_same
    assert abs(1 - frac_mask - frac_same - 0.1) < 0.04


def test_batch_larger_than_data():
    pytest.importorskip("tensorflow")
    with pytest.raises(ValueError, match="batch_size"):
        mlm_dataset(np.ones((3, 8), "int32"), 4, 50, MASK, [PAD], 2)
