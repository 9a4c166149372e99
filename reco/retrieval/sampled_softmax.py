"""Sampled softmax over in-batch and random negatives, with the log-Q correction.

With in-batch negatives a popular item shows up as a negative far more often than a rare one,
so an uncorrected model learns to push popular items down. Yi et al. (RecSys 2019) subtract
``log Q(i)``, the log of how likely item i is to be in the candidate set, from every logit; the
softmax over the sample then estimates the full softmax without that bias. With ``B`` in-batch
positives drawn from the item distribution ``p`` and ``R`` uniform random negatives over ``T``
items, the expected number of copies of item i among the candidates is ``B p(i) + R / T``:
its log is the correction used here (PinnerFormer mixes both kinds of negatives the same way).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def item_distribution(counts: np.ndarray) -> torch.Tensor:
    """Probability of each item being a training positive (its share of engagements)."""
    c = np.asarray(counts, np.float64) + 1e-9
    return torch.from_numpy(c / c.sum()).float()


def logq_correction(
    candidate_ids: torch.Tensor, item_probs: torch.Tensor, n_in_batch: int, n_random: int
) -> torch.Tensor:
    """``log(B p(i) + R / T)`` of each candidate: the log expected copies in the sample."""
    n_items = len(item_probs)
    expected = n_in_batch * item_probs[candidate_ids] + n_random / n_items
    return torch.log(expected)


def sampled_softmax_loss(
    users: torch.Tensor,
    positives: torch.Tensor,
    positive_vectors: torch.Tensor,
    random_ids: torch.Tensor,
    random_vectors: torch.Tensor,
    temperature: float,
    item_probs: torch.Tensor | None,
    owners: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of each row's own positive against every candidate of the batch.

    ``users`` (A, d) and ``positive_vectors`` (A, d) are unit vectors; candidates are the A
    in-batch positives then the R random ones. A candidate with the row's own positive id
    (an accidental hit) or another positive of the same owner (a user's other future items) is
    not a negative and is masked. ``item_probs`` None: no log-Q correction.
    """
    a = len(users)
    cand_ids = torch.cat([positives, random_ids])
    logits = users @ torch.cat([positive_vectors, random_vectors]).T / temperature
    if item_probs is not None:
        logits = logits - logq_correction(cand_ids, item_probs, a, len(random_ids))[None, :]
    not_negative = cand_ids[None, :] == positives[:, None]
    if owners is not None:
        same_owner = torch.zeros_like(not_negative)
        same_owner[:, :a] = owners[None, :] == owners[:, None]
        not_negative |= same_owner
    diagonal = torch.arange(a, device=logits.device)
    not_negative[diagonal, diagonal] = False
    logits = logits.masked_fill(not_negative, float("-inf"))
    return F.cross_entropy(logits, diagonal)
