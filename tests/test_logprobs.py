"""Chunked log-probs and entropies equal the naive full-logits computation."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from asymrl.logprobs import chunked_logprobs_and_entropy, logprobs_and_entropy_from_logits, sequence_logprobs


def naive(hidden, weight, targets, temperature):
    logits = (hidden @ weight.T).float() / temperature
    log_probs = torch.log_softmax(logits, dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    return log_probs.gather(-1, targets[:, None])[:, 0], entropy


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_chunked_equals_naive_values_and_gradients(chunk_size, temperature):
    generator = torch.Generator().manual_seed(0)
    rows, hidden_size, vocab = 50, 16, 301
    head = torch.nn.Linear(hidden_size, vocab, bias=False)
    torch.nn.init.normal_(head.weight, std=1.0, generator=generator)
    hidden = torch.randn(rows, hidden_size, generator=generator).requires_grad_()
    targets = torch.randint(0, vocab, (rows,), generator=generator)

    seen_rows = []

    def project(x):
        seen_rows.append(x.shape[0])
        return head(x)

    logp, entropy = chunked_logprobs_and_entropy(hidden, project, targets, temperature=temperature, chunk_size=chunk_size)
    assert max(seen_rows) <= chunk_size  # never more than one chunk of logits at a time
    (logp.sum() + 0.3 * entropy.sum()).backward()
    grad_hidden, grad_weight = hidden.grad.clone(), head.weight.grad.clone()

    hidden.grad, head.weight.grad = None, None
    ref_logp, ref_entropy = naive(hidden, head.weight, targets, temperature)
    (ref_logp.sum() + 0.3 * ref_entropy.sum()).backward()

    torch.testing.assert_close(logp, ref_logp, atol=1e-5, rtol=0)
    torch.testing.assert_close(entropy, ref_entropy, atol=1e-5, rtol=0)
    torch.testing.assert_close(grad_hidden, hidden.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_weight, head.weight.grad, atol=1e-5, rtol=1e-5)


def test_entropy_of_uniform_and_peaked_rows():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]])
    logp, entropy = logprobs_and_entropy_from_logits(logits, torch.tensor([1, 0]))
    torch.testing.assert_close(entropy, torch.tensor([torch.log(torch.tensor(4.0)).item(), 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(logp, torch.tensor([-torch.log(torch.tensor(4.0)).item(), 0.0]), atol=1e-6, rtol=0)


def test_empty_input():
    logp, entropy = chunked_logprobs_and_entropy(torch.zeros(0, 4), lambda x: x, torch.zeros(0, dtype=torch.long))
    assert logp.shape == (0,) and entropy.shape == (0,)


def test_sequence_logprobs_matches_full_forward_on_a_llama():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )
    model = LlamaForCausalLM(config).float().eval()
    batch, length = 3, 12
    input_ids = torch.randint(0, 97, (batch, length))
    attention_mask = torch.ones(batch, length, dtype=torch.long)
    attention_mask[1, 9:] = 0  # right padding
    response_mask = torch.zeros(batch, length, dtype=torch.long)
    response_mask[0, 4:12] = 1
    response_mask[1, 5:9] = 1
    response_mask[2, 2:7] = 1

    logp, entropy = sequence_logprobs(model, input_ids, attention_mask, response_mask, temperature=0.7, chunk_size=3)

    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float() / 0.7
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
    expected_logp = torch.zeros(batch, length)
    expected_logp[:, 1:] = log_probs.gather(-1, input_ids[:, 1:, None])[..., 0]
    expected_entropy = torch.zeros(batch, length)
    expected_entropy[:, 1:] = -(log_probs.exp() * log_probs).sum(-1)
    keep = response_mask.bool()
    torch.testing.assert_close(logp[keep], expected_logp[keep], atol=1e-5, rtol=0)
    torch.testing.assert_close(entropy[keep], expected_entropy[keep], atol=1e-5, rtol=0)
    assert torch.equal(logp[~keep], torch.zeros_like(logp[~keep]))
    assert torch.equal(entropy[~keep], torch.zeros_like(entropy[~keep]))

    # Gradients flow to the model through the masked scatter.
    logp.sum().backward()
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0
