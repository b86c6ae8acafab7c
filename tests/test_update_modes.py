"""Every way of cutting a step into micro-batches gives the same update: fixed count, token budget and
token budget + packing, with one or two mini-batches per step, with the first mini-batch's old
log-probs recomputed or taken from the update's own forward (``train.old_logprobs_from_update``)."""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import ROWS, VOCAB, fixed_rollouts
from transformers import LlamaConfig, LlamaForCausalLM

from asymrl.loss import PolicyLossConfig
from asymrl.update import PolicyUpdater, UpdateConfig, build_accelerator

MODES = {"fixed": {}, "token_budget": {"max_tokens_per_micro_batch": 24},
         "token_budget_packed": {"max_tokens_per_micro_batch": 24, "packing": True}}


def one_step(mode: str, mini_batch_rows: int, from_update: bool) -> dict:
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))
    options = MODES[mode]
    micro = 2 if "max_tokens_per_micro_batch" not in options else 1
    updater = PolicyUpdater(build_accelerator(mini_batch_rows // micro, micro, 1.0), model, UpdateConfig(
        lr=1e-3, micro_batch_size=2, temperature=0.8, loss=PolicyLossConfig(eps_low=0.2, eps_high=0.28), **options))
    batch, advantages = fixed_rollouts()
    # With from_update the first mini-batch's rows are left to the update: with one mini-batch per
    # step, the log-prob pass has no rows at all.
    old_logprobs, old_entropy = updater.logprobs(batch, first_row=mini_batch_rows if from_update else 0)
    metrics = updater.update(batch, advantages * batch.response_mask, old_logprobs, mini_batch_rows,
                             old_entropy=old_entropy if from_update else None)
    weights = torch.cat([p.detach().flatten() for p in updater.model.parameters()])
    return {"metrics": metrics, "weights": weights, "old_logprobs": old_logprobs, "old_entropy": old_entropy}


@pytest.fixture(scope="module")
def reference() -> dict[int, dict]:
    """Fixed-count micro-batches, every old log-prob from a separate pass: one and two mini-batches."""
    return {rows: one_step("fixed", rows, from_update=False) for rows in (ROWS, ROWS // 2)}


@pytest.mark.parametrize("mode, mini_batch_rows, from_update",
                         [combo for combo in itertools.product(MODES, (ROWS, ROWS // 2), (False, True))
                          if combo != ("fixed", ROWS, False) and combo != ("fixed", ROWS // 2, False)])
def test_every_batching_gives_the_fixed_count_update(reference, mode, mini_batch_rows, from_update):
    run, expected = one_step(mode, mini_batch_rows, from_update), reference[mini_batch_rows]
    assert run["metrics"]["actor/optimizer_steps"] == ROWS // mini_batch_rows
    for key in ("actor/pg_loss", "actor/grad_norm"):
        assert run["metrics"][key] == pytest.approx(expected["metrics"][key], rel=1e-5), key
    torch.testing.assert_close(run["weights"], expected["weights"], rtol=0, atol=1e-5)
    # Old log-probs and entropies: every row filled (by the pass or by the update), the pass's values.
    for key in ("old_logprobs", "old_entropy"):
        torch.testing.assert_close(run[key], expected[key], rtol=0, atol=1e-5)
        assert bool((run[key].abs().sum(dim=1) > 0).all()), key


def test_one_and_two_mini_batches_differ(reference):
    """The grid above compares like with like: one optimizer step is not two."""
    assert reference[ROWS]["metrics"]["actor/optimizer_steps"] == 1 and reference[ROWS // 2]["metrics"]["actor/optimizer_steps"] == 2
    assert not torch.allclose(reference[ROWS]["weights"], reference[ROWS // 2]["weights"], atol=1e-6)
