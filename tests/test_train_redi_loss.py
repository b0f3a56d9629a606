"""The REDI loss on hand-made tensors: values, gradient directions, masking, normalisation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tracekit.train.redi import IGNORE_INDEX, redi_loss, sequence_logps


def _logits_for(probs_per_position: list[list[float]]) -> torch.Tensor:
    """Logits whose softmax is exactly the given distributions (log of the probabilities)."""
    return torch.log(torch.tensor(probs_per_position, dtype=torch.float64)).unsqueeze(0)


@pytest.mark.parametrize("alpha", [0.0, 0.8, 1.0])
def test_redi_loss_hand_computed(alpha):
    chosen = torch.tensor([-0.5, -1.2], dtype=torch.float64)
    rejected = torch.tensor([-2.0, -0.7], dtype=torch.float64)
    losses = redi_loss(chosen, rejected, alpha)
    expected = [0.5 + alpha * -2.0, 1.2 + alpha * -0.7]
    assert losses.tolist() == pytest.approx(expected)


def test_redi_loss_rejects_alpha_outside_unit_interval():
    with pytest.raises(ValueError):
        redi_loss(torch.zeros(1), torch.zeros(1), 1.5)


def test_gradients_push_chosen_up_and_rejected_down():
    chosen = torch.tensor([-1.0, -2.0], requires_grad=True)
    rejected = torch.tensor([-1.5, -0.5], requires_grad=True)
    redi_loss(chosen, rejected, 0.8).mean().backward()
    # gradient descent moves against the gradient: chosen log-probs rise, rejected ones fall
    assert (chosen.grad < 0).all()
    assert (rejected.grad > 0).all()
    # asymmetric: the negative's push is alpha times the positive's pull
    assert torch.allclose(rejected.grad, -0.8 * chosen.grad)


def test_sequence_logps_matches_hand_computed_values():
    # vocabulary of 3; sequence [0, 1, 2]; position t predicts token t+1
    logits = _logits_for([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]])
    labels = torch.tensor([[IGNORE_INDEX, 1, 2]])  # the first token is prompt
    total, n = sequence_logps(logits, labels, average=False)
    assert n.tolist() == [2]
    assert total.item() == pytest.approx(math.log(0.5) + math.log(0.8))
    mean, _ = sequence_logps(logits, labels, average=True)
    assert mean.item() == pytest.approx((math.log(0.5) + math.log(0.8)) / 2)


def test_prompt_and_padding_positions_do_not_count():
    torch.manual_seed(0)
    logits = torch.randn(1, 6, 11)
    labels = torch.tensor([[5, 3, 7, 2, 9, 4]])
    masked = labels.clone()
    masked[0, :2] = IGNORE_INDEX  # prompt
    masked[0, -1] = IGNORE_INDEX  # padding
    # changing logits that predict masked tokens changes nothing
    other = logits.clone()
    other[0, 0] += torch.randn(11) * 5  # predicts labels[1] (prompt)
    other[0, 4] += torch.randn(11) * 5  # predicts labels[5] (padding)
    a, na = sequence_logps(logits, masked)
    b, nb = sequence_logps(other, masked)
    assert na.item() == nb.item() == 3
    assert torch.allclose(a, b)
    # while the unmasked sequence does see them
    c, _ = sequence_logps(other, labels)
    d, _ = sequence_logps(logits, labels)
    assert not torch.allclose(c, d)


def test_length_normalisation_makes_repeated_completions_equal():
    """A completion repeated twice has twice the summed log-prob but the same per-token mean,
    so REDI does not favour short negatives or long positives by length alone."""
    probs = [[0.6, 0.4]] * 9
    logits = _logits_for(probs)
    short = torch.tensor([[IGNORE_INDEX, 0, 1, 0, 1] + [IGNORE_INDEX] * 4])
    long = torch.tensor([[IGNORE_INDEX, 0, 1, 0, 1, 0, 1, 0, 1]])
    s_sum, ns = sequence_logps(logits, short, average=False)
    l_sum, nl = sequence_logps(logits, long, average=False)
    assert (ns.item(), nl.item()) == (4, 8)
    assert l_sum.item() == pytest.approx(2 * s_sum.item())
    s_mean, _ = sequence_logps(logits, short)
    l_mean, _ = sequence_logps(logits, long)
    assert s_mean.item() == pytest.approx(l_mean.item())


def test_alpha_zero_is_exactly_sft_normalised_nll():
    torch.manual_seed(1)
    batch, length, vocab = 3, 7, 13
    logits = torch.randn(2 * batch, length, vocab, dtype=torch.float64)
    labels = torch.randint(0, vocab, (2 * batch, length))
    labels[:, :2] = IGNORE_INDEX
    labels[0, -2:] = IGNORE_INDEX  # different lengths per row
    logps, _ = sequence_logps(logits, labels)
    loss = redi_loss(logps[:batch], logps[batch:], alpha=0.0).mean()
    # SFT: per-sequence mean token NLL of the positives, averaged over the batch
    nll = []
    for i in range(batch):
        nll.append(
            F.cross_entropy(
                logits[i, :-1], labels[i, 1:], ignore_index=IGNORE_INDEX, reduction="mean"
            )
        )
    assert loss.item() == pytest.approx(torch.stack(nll).mean().item(), abs=1e-12)


def test_empty_completion_contributes_zero_not_nan():
    logits = torch.randn(1, 4, 5)
    labels = torch.full((1, 4), IGNORE_INDEX)
    logps, n = sequence_logps(logits, labels)
    assert n.item() == 0
    assert logps.item() == 0.0
