"""The transformers engine's sampling distribution: temperature and top-p applied in one logits
processor that records each sampled token's log-prob without a vocabulary-sized buffer per step.

A module of its own so that registering the engine (which every config does) need not import
transformers: the engine imports this when it generates.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor, TopPLogitsWarper


class SamplingDistribution(LogitsProcessor):
    """The distribution the engine samples from, with each sampled token's log-prob recorded on the way.

    ``generate`` is asked for no temperature or top-p of its own: it would merge its warpers with
    user processors in an order it does not promise, and the recorded log-prob must be that of the
    temperature-scaled *full-vocabulary* distribution (top-p not renormalised; rollout/base.py), so
    this processor, the only one that changes the scores, applies both itself. Each call gets the
    raw scores of step t (rows x vocabulary), writes ``log_softmax(scores / T)`` into one
    rows x vocabulary buffer, and first gathers from it, while it still holds step t - 1, the token
    sampled then (the last column of ``input_ids``). That replaces the rows x new tokens x vocabulary
    stack that ``output_logits`` kept (~320 GB at 256 rows x 4,096 tokens x 151,936);
    :meth:`sampled_logprobs` gathers the last token once ``generate`` returns.
    """

    def __init__(self, temperature: float, top_p: float, max_new_tokens: int, record_logprobs: bool):
        self.temperature = temperature
        # transformers' own top-p warper, applied as generate() would: same tokens for a given seed.
        self.top_p = TopPLogitsWarper(top_p) if top_p < 1.0 else None
        self.max_new_tokens = max_new_tokens
        self.record_logprobs = record_logprobs
        self.steps = 0
        # Allocated on the first step (shape and device of the scores) and reused: a fresh buffer a
        # step, plus a small tensor kept per step, let the CPU heap fragment (+240 MB over 256 steps of 16 rows).
        self.step_logprobs: torch.Tensor | None = None  # (rows, vocabulary): the latest step's log_softmax
        self.sampled: torch.Tensor | None = None  # (rows, max_new_tokens): the sampled tokens' log-probs

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scaled = scores.float() / self.temperature
        if self.record_logprobs:
            if self.steps == 0:
                self.step_logprobs = torch.empty_like(scaled)
                self.sampled = scaled.new_zeros((scaled.shape[0], self.max_new_tokens))
            else:
                self._record(input_ids[:, -1:])
            torch.sub(scaled, torch.logsumexp(scaled, dim=-1, keepdim=True), out=self.step_logprobs)
            self.steps += 1
        return scaled if self.top_p is None else self.top_p(input_ids, scaled)

    def _record(self, tokens: torch.Tensor) -> None:
        """Store the log-probs of ``tokens`` (rows, 1), the tokens sampled from the buffer's step."""
        self.sampled[:, self.steps - 1] = self.step_logprobs.gather(-1, tokens)[:, 0]

    def sampled_logprobs(self, sequences: torch.Tensor) -> torch.Tensor:
        """``(rows, new tokens)`` log-probs of the sampled tokens, given the sequences generate returned."""
        self._record(sequences[:, -1:])
        self.step_logprobs = None
        return self.sampled[:, : self.steps]
