"""Overlong responses (DAPO, Yu et al. 2025, arXiv 2503.14476, sec. 3.4): a soft length penalty and
overlong filtering, as pure functions of response lengths.

How a shaped reward meets the estimators: every estimator of this project needs binary correctness
to compute the group accuracy ``p = k/G`` (docs/method.md sec. 2), so correctness alone goes into the estimator,
and the length penalty is a *separate term* added to the rollout's advantage afterwards:
``A_i <- A_i + overlong_penalty * R_length(|y_i|)``. DAPO adds it to the reward before GRPO's
normalisation instead; that would turn ``p`` into a non-binary mean and change every estimator's
curve, which is what the paper studies. The separate term is also what DAPO's penalty does to a
group with no correct answer, where normalised rewards would cancel it.
"""

from __future__ import annotations

import torch


def soft_overlong_penalty(lengths: torch.Tensor, max_new_tokens: int, buffer: int) -> torch.Tensor:
    """DAPO's eq. 13, per response length ``|y|`` with ``L_max = max_new_tokens`` and ``L_cache = buffer``:
    0 for ``|y| <= L_max - L_cache``, ``((L_max - L_cache) - |y|) / L_cache`` inside the buffer (from 0
    down to -1 at ``L_max``), -1 beyond. ``|y|`` counts the generated tokens, EOS included."""
    if not 0 < buffer <= max_new_tokens:
        raise ValueError(f"the overlong buffer must be in (0, max_new_tokens={max_new_tokens}], got {buffer}")
    lengths = lengths.to(torch.float32)
    start = max_new_tokens - buffer
    inside = (start - lengths) / buffer
    return torch.where(lengths <= start, torch.zeros_like(lengths), torch.clamp(inside, min=-1.0))


def untruncated_response_mask(response_mask: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
    """Overlong filtering: the response mask with the rows of truncated responses zeroed, so they carry
    no loss and do not count in its normaliser (``truncated`` is one flag per row)."""
    return response_mask * (~truncated.bool()).to(response_mask.dtype).unsqueeze(1)
