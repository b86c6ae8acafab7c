"""Per-token log-probabilities and entropies of a causal LM, computed in chunks.

The full ``(tokens x vocab)`` float32 logits never exist at once: at Qwen scale (16 x 2048 tokens,
151,936 vocab) that tensor alone is ~20 GB and ran an 80 GB H100 out of memory (measured). Instead the
final hidden states of the *response* positions are projected through the LM head a chunk of rows at
a time; with gradients, each chunk is checkpointed, so backward recomputes its logits instead of
keeping them.

Entropy (the paper's entropy regulariser and diagnostics, Gu et al. 2026 sec. 4): ``H = logsumexp(z) - sum(softmax(z) * z)`` with ``z = logits / temperature``,
over the full vocabulary.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.checkpoint import checkpoint


def logprobs_and_entropy_from_logits(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of each target token and the entropy of each row of ``logits`` (rows x vocab)."""
    scaled = logits.float() / temperature
    log_normaliser = torch.logsumexp(scaled, dim=-1)
    target_logits = scaled.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    probs = torch.softmax(scaled, dim=-1)
    entropy = log_normaliser - (probs * scaled).sum(dim=-1)
    return target_logits - log_normaliser, entropy


def chunked_logprobs_and_entropy(
    hidden: torch.Tensor,
    project: Callable[[torch.Tensor], torch.Tensor],
    targets: torch.Tensor,
    *,
    temperature: float = 1.0,
    chunk_size: int = 1024,
    min_chunks: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs and entropies of ``targets`` given final hidden states, ``chunk_size`` rows at a time.

    ``project`` is called at least ``min_chunks`` times (with empty chunks if need be): under
    DeepSpeed ZeRO-3 every call gathers the head's weights collectively, so all ranks must make the
    same number of calls whatever their token counts.

    ``hidden`` is ``(rows, hidden_size)``, ``targets`` ``(rows,)``; ``project`` maps hidden states to
    logits (the model's LM head module: calling the module, not reading its weight, keeps DeepSpeed
    ZeRO-3's parameter gathering working). Peak extra memory is one ``(chunk_size x vocab)`` float32
    block, in forward and in backward.
    """
    def one_chunk(rows: torch.Tensor, chunk_targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return logprobs_and_entropy_from_logits(project(rows), chunk_targets, temperature)

    needs_grad = torch.is_grad_enabled() and hidden.requires_grad
    logprob_chunks, entropy_chunks = [], []
    chunks = max(-(-hidden.shape[0] // chunk_size), min_chunks, 1)
    for start in range(0, chunks * chunk_size, chunk_size):
        rows = hidden[start : start + chunk_size]
        chunk_targets = targets[start : start + chunk_size]
        if needs_grad:
            logprob, entropy = checkpoint(one_chunk, rows, chunk_targets, use_reentrant=False)
        else:
            logprob, entropy = one_chunk(rows, chunk_targets)
        logprob_chunks.append(logprob)
        entropy_chunks.append(entropy)
    return torch.cat(logprob_chunks), torch.cat(entropy_chunks)


def sequence_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    temperature: float = 1.0,
    chunk_size: int = 1024,
    min_chunks: int = 0,
    position_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probs and entropies of the response tokens of right-padded sequences, or of
    packed ones: several sequences per row, ``attention_mask=None`` and ``position_ids`` restarting at
    0 for each (transformers then attends within each sequence only: flash-attention varlen, or a
    block-diagonal mask for sdpa / eager).

    All inputs are ``(batch, seq)``; ``response_mask`` is 1 on response tokens. Returns two
    ``(batch, seq)`` float32 tensors aligned with ``input_ids`` (position ``t`` holds the log-prob of
    token ``t`` given tokens ``< t``), zero where ``response_mask`` is 0. Only response positions are
    projected to the vocabulary. Works for transformers causal LMs that expose their decoder stack
    (``model.get_decoder()``) and LM head (``model.get_output_embeddings()``): Llama, Qwen2/3, Mistral...
    """
    backbone = model.get_decoder()
    lm_head = model.get_output_embeddings()
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False).last_hidden_state
    # The hidden state at position t - 1 predicts token t.
    predicts = response_mask[:, 1:].bool()
    rows = hidden[:, :-1][predicts]
    targets = input_ids[:, 1:][predicts]
    logprob, entropy = chunked_logprobs_and_entropy(
        rows, lm_head, targets, temperature=temperature, chunk_size=chunk_size, min_chunks=min_chunks
    )
    out_logprob = hidden.new_zeros(input_ids.shape, dtype=torch.float32)
    out_entropy = hidden.new_zeros(input_ids.shape, dtype=torch.float32)
    positions = torch.zeros_like(response_mask, dtype=torch.bool)
    positions[:, 1:] = predicts
    out_logprob = out_logprob.masked_scatter(positions, logprob)
    out_entropy = out_entropy.masked_scatter(positions, entropy)
    return out_logprob, out_entropy
