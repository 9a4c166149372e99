"""The log-Q correction and the sampled softmax, against hand-worked numbers."""

import math

import numpy as np
import torch

from reco.retrieval.sampled_softmax import item_distribution, logq_correction, sampled_softmax_loss


def test_logq_correction_on_a_hand_worked_batch():
    probs = torch.tensor([0.5, 0.25, 0.25])
    # two in-batch positives: expected copies of item i are 2 p(i)
    got = logq_correction(torch.tensor([0, 1]), probs, n_in_batch=2, n_random=0)
    assert torch.allclose(got, torch.tensor([math.log(1.0), math.log(0.5)]))
    # plus three uniform random negatives over three items: one more expected copy each
    got = logq_correction(torch.tensor([0, 1, 2]), probs, n_in_batch=2, n_random=3)
    assert torch.allclose(got, torch.tensor([math.log(2.0), math.log(1.5), math.log(1.5)]))


def test_item_distribution_is_the_share_of_engagements():
    assert torch.allclose(item_distribution(np.array([2, 1, 1])), torch.tensor([0.5, 0.25, 0.25]), atol=1e-6)


def test_sampled_softmax_subtracts_logq_from_every_logit():
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items = users.clone()  # each user's positive is its own axis: logits are the identity
    probs = torch.tensor([0.5, 0.25])
    loss = sampled_softmax_loss(
        users,
        torch.tensor([0, 1]),
        items,
        torch.empty(0, dtype=torch.long),
        torch.empty(0, 2),
        temperature=1.0,
        item_probs=probs,
    )
    # corrections log(2 * p) = [0, log 0.5]; row 0 logits [1 - 0, 0 - log 0.5], row 1 [0 - 0, 1 - log 0.5]
    row0 = -math.log(math.exp(1) / (math.exp(1) + math.exp(math.log(2))))
    row1 = -math.log(math.exp(1 + math.log(2)) / (math.exp(0) + math.exp(1 + math.log(2))))
    assert math.isclose(float(loss), (row0 + row1) / 2, rel_tol=1e-5)
    plain = sampled_softmax_loss(
        users, torch.tensor([0, 1]), items, torch.empty(0, dtype=torch.long), torch.empty(0, 2), 1.0, None
    )
    assert math.isclose(float(plain), -math.log(math.e / (math.e + 1)), rel_tol=1e-5)


def test_accidental_hits_and_same_owner_positives_are_not_negatives():
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    positives = torch.tensor([0, 1, 1])  # rows 1 and 2 share item 1: neither is the other's negative
    loss = sampled_softmax_loss(users, positives, items, torch.empty(0, dtype=torch.long), torch.empty(0, 2), 1.0, None)
    row0 = -math.log(math.e / (math.e + 1 + 1))  # candidates 1 and 2 both have id 1, neither is row 0's positive
    row1 = -math.log(math.e / (math.e + 1))  # candidate 2 (same id) masked
    row2 = -math.log(1 / (1 + math.e))  # candidate 1 (same id) masked; candidate 0 scores e
    assert math.isclose(float(loss), (row0 + row1 + row2) / 3, rel_tol=1e-5)
    owners = torch.tensor([7, 7, 8])  # rows 0 and 1 are one user's: their positives do not compete
    loss = sampled_softmax_loss(
        users, positives, items, torch.empty(0, dtype=torch.long), torch.empty(0, 2), 1.0, None, owners
    )
    row0 = -math.log(math.e / (math.e + 1))
    row1 = 0.0  # candidate 0 (same owner) and 2 (same id) masked: only its positive is left
    assert math.isclose(float(loss), (row0 + row1 + row2) / 3, rel_tol=1e-5)
