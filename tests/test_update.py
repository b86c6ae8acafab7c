"""The micro-batched PPO update: one process vs. two processes under DDP and DeepSpeed ZeRO (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "update_worker.py"


def run_worker(out: Path, launch_config: str | None = None, *extra: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu", "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("TORCH_EXTENSIONS_DIR", str(ROOT / ".cache" / "torch_extensions"))
    if launch_config is None:
        command = [sys.executable, str(WORKER), str(out), *extra]
    else:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--main_process_port", "0", "--config_file", str(ROOT / "launch" / launch_config), str(WORKER), str(out), *extra]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def single_process(tmp_path_factory) -> dict:
    return run_worker(tmp_path_factory.mktemp("single") / "out.json")


def max_weight_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in a)


def test_single_process_update_moves_weights_and_reports_metrics(single_process):
    metrics = single_process["metrics"]
    assert metrics["actor/optimizer_steps"] == 2 and metrics["actor/skipped_steps"] == 0
    assert 0 < metrics["actor/clip_frac_high"] < 1 and 0 < metrics["actor/clip_frac_low"] < 1
    assert metrics["actor/grad_norm"] > 0
    # Every weight tensor moved, by at most two Adam steps of lr 1e-3 (no weight decay): an Adam step
    # moves an element by at most about lr.
    before, after = single_process["initial_weights"], single_process["weights"]
    assert before.keys() == after.keys()
    for name in before:
        moved = max(abs(x - y) for x, y in zip(before[name], after[name]))
        assert 0 < moved <= 2 * 1e-3 * 1.05, (name, moved)


def test_one_optimizer_step_moves_each_weight_by_lr_against_its_gradient():
    """Direction and size of an update: one mini-batch (one AdamW step, bias-corrected, no weight
    decay) moves each weight by -lr g / (|g| + eps), g its clipped gradient of the loss computed here by
    hand (ratio 1: the surrogate's gradient is that of the token-mean of -A log p); unused embedding
    rows (gradient 0) stay."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from asymrl.loss import PolicyLossConfig, policy_loss
    from asymrl.update import PolicyUpdater, RolloutBatch, UpdateConfig, build_accelerator

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))
    lr, clip = 1e-3, 1.0
    updater = PolicyUpdater(build_accelerator(2, 4, clip), model, UpdateConfig(lr=lr, micro_batch_size=4, grad_clip=clip))
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, 50, (8, 12), generator=generator)
    response_mask = (torch.arange(12)[None] >= 4).long().expand(8, 12)
    batch = RolloutBatch(input_ids, torch.ones_like(input_ids), response_mask)
    advantages = torch.randn(8, 1, generator=generator) * response_mask
    parameters = [p for p in updater.model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in parameters]
    logp, _ = updater.policy(input_ids, torch.ones_like(input_ids), response_mask)
    loss, _ = policy_loss(logp, logp.detach(), advantages, response_mask, PolicyLossConfig())
    grads = torch.autograd.grad(loss, parameters)
    norm = float(torch.cat([g.flatten() for g in grads]).norm())
    scale = min(1.0, clip / (norm + 1e-6))  # clip_grad_norm_'s factor

    old_logprobs, _ = updater.logprobs(batch)
    metrics = updater.update(batch, advantages, old_logprobs, mini_batch_rows=8)
    assert metrics["actor/optimizer_steps"] == 1 and metrics["actor/grad_norm"] == pytest.approx(norm, rel=1e-5)
    decided = total = 0
    for parameter, start, grad in zip(parameters, before, grads):
        moved = parameter.detach() - start
        clipped = scale * grad
        expected = -lr * clipped / (clipped.abs() + 1e-8)
        # Where |g| is far above Adam's eps the step is lr against the gradient's sign: to 1% of lr.
        clear = clipped.abs() > 1e-6
        torch.testing.assert_close(moved[clear], expected[clear], rtol=0, atol=1e-2 * lr)
        assert torch.equal(moved[grad == 0], torch.zeros_like(moved[grad == 0]))
        decided, total = decided + int(clear.sum()), total + grad.numel()
    assert decided > 0.9 * total


@pytest.mark.distributed
@pytest.mark.parametrize("launch_config", ["cpu_ddp2.yaml", "cpu_zero2.yaml", "cpu_zero3.yaml"])
def test_two_processes_equal_one_process(single_process, launch_config, tmp_path):
    """Same rollouts split over 2 ranks: identical weights on both ranks, and the same loss, grad
    norm and weights as one process (the token-mean normaliser spans micro-batches and ranks)."""
    distributed = run_worker(tmp_path / "out.json", launch_config)
    assert distributed["world"] == 2
    first, second = distributed["rank_checksums"]
    assert first == second
    assert distributed["metrics"]["actor/pg_loss"] == pytest.approx(single_process["metrics"]["actor/pg_loss"], rel=1e-5)
    assert distributed["metrics"]["actor/grad_norm"] == pytest.approx(single_process["metrics"]["actor/grad_norm"], rel=1e-5)
    assert max_weight_difference(distributed["weights"], single_process["weights"]) < 1e-5
    if launch_config == "cpu_zero3.yaml":  # parameter shards: the sign-split gradient norms are refused
        assert distributed["sign_gradient"] == {"refused": True}
    else:  # summed over ranks with the global normaliser: the one-process norms
        assert single_process["sign_gradient"].keys() == distributed["sign_gradient"].keys()
        for key, value in single_process["sign_gradient"].items():
            assert distributed["sign_gradient"][key] == pytest.approx(value, rel=1e-5), key


def test_a_non_finite_gradient_skips_the_step_and_is_counted(single_process, tmp_path):
    poisoned = run_worker(tmp_path / "out.json", None, "nan")
    assert poisoned["metrics"]["actor/skipped_steps"] == 1 and poisoned["metrics"]["actor/optimizer_steps"] == 1
    # The skipped step left no trace: all weights are finite.
    assert all(x == x for values in poisoned["weights"].values() for x in values)


# A budget of 24 padded tokens: the 7-14-token rows fall into micro-batches of one to three rows.
TOKEN_BUDGET = "tokens=24"


@pytest.fixture(scope="module")
def single_process_token_budget(tmp_path_factory) -> dict:
    return run_worker(tmp_path_factory.mktemp("single_tokens") / "out.json", None, TOKEN_BUDGET)


def test_token_budget_equals_fixed_count(single_process, single_process_token_budget):
    """Micro-batches by token count change the padding, not the mini-batch loss or its gradient."""
    budget, fixed = single_process_token_budget["metrics"], single_process["metrics"]
    assert budget["actor/pg_loss"] == pytest.approx(fixed["actor/pg_loss"], rel=1e-5)
    assert budget["actor/grad_norm"] == pytest.approx(fixed["actor/grad_norm"], rel=1e-5)
    assert budget["actor/optimizer_steps"] == 2
    assert max_weight_difference(single_process_token_budget["weights"], single_process["weights"]) < 1e-5
    # Length-sorted groups waste less than fixed pairs of rows in arrival order.
    assert budget["batching/padded_frac"] < fixed["batching/padded_frac"]


@pytest.mark.distributed
@pytest.mark.parametrize("launch_config", ["cpu_ddp2.yaml", "cpu_zero2.yaml", "cpu_zero3.yaml"])
def test_token_budget_two_processes_equal_one_process(single_process, launch_config, tmp_path):
    distributed = run_worker(tmp_path / "out.json", launch_config, TOKEN_BUDGET)
    first, second = distributed["rank_checksums"]
    assert distributed["world"] == 2 and first == second
    assert distributed["metrics"]["actor/pg_loss"] == pytest.approx(single_process["metrics"]["actor/pg_loss"], rel=1e-5)
    assert distributed["metrics"]["actor/grad_norm"] == pytest.approx(single_process["metrics"]["actor/grad_norm"], rel=1e-5)
    assert max_weight_difference(distributed["weights"], single_process["weights"]) < 1e-5


@pytest.mark.parametrize("options", [("packed",), (TOKEN_BUDGET, "packed")])
def test_packed_equals_padded(single_process, tmp_path, options):
    """Sequences packed several to a row (position ids restarting, no attention mask) give the
    padded update's old log-probs, loss, gradient norm and weights, with less padding."""
    packed, padded = run_worker(tmp_path / "out.json", None, *options), single_process
    assert packed["metrics"]["actor/pg_loss"] == pytest.approx(padded["metrics"]["actor/pg_loss"], rel=1e-5)
    assert packed["metrics"]["actor/grad_norm"] == pytest.approx(padded["metrics"]["actor/grad_norm"], rel=1e-5)
    assert max_weight_difference(packed["weights"], padded["weights"]) < 1e-5
    # Never more padding (rows of 2 seldom fit one row; what fits is packed).
    assert packed["metrics"]["batching/padded_frac"] <= padded["metrics"]["batching/padded_frac"]


@pytest.mark.distributed
@pytest.mark.parametrize("launch_config", ["cpu_ddp2.yaml", "cpu_zero3.yaml"])
def test_packed_two_processes_equal_one_process(single_process, launch_config, tmp_path):
    distributed = run_worker(tmp_path / "out.json", launch_config, TOKEN_BUDGET, "packed")
    first, second = distributed["rank_checksums"]
    assert distributed["world"] == 2 and first == second
    assert distributed["metrics"]["actor/pg_loss"] == pytest.approx(single_process["metrics"]["actor/pg_loss"], rel=1e-5)
    assert distributed["metrics"]["actor/grad_norm"] == pytest.approx(single_process["metrics"]["actor/grad_norm"], rel=1e-5)
    assert max_weight_difference(distributed["weights"], single_process["weights"]) < 1e-5


@pytest.fixture(scope="module")
def single_process_on_policy(tmp_path_factory) -> dict:
    return run_worker(tmp_path_factory.mktemp("on_policy") / "out.json", None, "on_policy")


@pytest.mark.parametrize("options", [(), (TOKEN_BUDGET, "packed")])
def test_first_mini_batch_old_logprobs_from_the_update_forward(single_process_on_policy, tmp_path, options):
    """On-policy, the update's first forward (before any optimizer step) gives the first mini-batch's
    old log-probs and entropies: those of a separate pass, and the same loss, gradient and weights."""
    import torch

    recorded, computed = run_worker(tmp_path / "out.json", None, "on_policy", "from_update", *options), single_process_on_policy
    for key in ("actor/pg_loss", "actor/grad_norm"):
        assert recorded["metrics"][key] == pytest.approx(computed["metrics"][key], rel=1e-5), key
    assert max_weight_difference(recorded["weights"], computed["weights"]) < 1e-5
    for key in ("old_logprobs", "old_entropy"):
        filled, passed = (torch.tensor(run[key]) for run in (recorded, computed))
        assert filled.abs().sum() > 0
        torch.testing.assert_close(filled, passed, rtol=0, atol=1e-5)


@pytest.mark.distributed
def test_first_mini_batch_from_the_update_two_processes_equal_one_process(single_process_on_policy, tmp_path):
    distributed = run_worker(tmp_path / "out.json", "cpu_zero2.yaml", "on_policy", "from_update")
    assert distributed["world"] == 2
    for key in ("actor/pg_loss", "actor/grad_norm"):
        assert distributed["metrics"][key] == pytest.approx(single_process_on_policy["metrics"][key], rel=1e-5), key
    assert max_weight_difference(distributed["weights"], single_process_on_policy["weights"]) < 1e-5


def test_pack_layout_by_hand():
    import torch

    from asymrl.update import pack_layout

    # Lengths 3, 5, 2, 1 into rows of width 5: [5], [3, 2], [1] (first fit, longest first).
    layout = pack_layout([3, 5, 2, 1])
    assert (layout.rows, layout.width) == (3, 5)
    rows = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8], [9, 10, 0, 0, 0], [11, 0, 0, 0, 0]])
    packed = layout.pack(rows)
    assert packed.tolist() == [[4, 5, 6, 7, 8], [1, 2, 3, 9, 10], [11, 0, 0, 0, 0]]
    assert torch.equal(layout.unpack(packed, rows.shape), rows)
    positions = layout.pack(torch.arange(5).expand(4, 5))
    assert positions.tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 0, 1], [0, 0, 0, 0, 0]]


def test_packed_sequences_give_the_padded_log_probs():
    """The model attends within each packed sequence only: log-probs and entropies equal the padded ones."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from asymrl.logprobs import sequence_logprobs
    from asymrl.update import pack_layout

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)).eval()
    lengths = [9, 4, 7, 12, 3]
    ids = torch.randint(3, 40, (5, 12))
    attention = (torch.arange(12)[None] < torch.tensor(lengths)[:, None]).long()
    response = attention * (torch.arange(12)[None] >= 2).long()
    padded = sequence_logprobs(model, ids * attention, attention, response)
    layout = pack_layout(lengths)
    assert layout.rows < 5
    packed = sequence_logprobs(model, layout.pack(ids * attention), None, layout.pack(response),
                               position_ids=layout.pack(torch.arange(12).expand(5, 12)))
    for padded_values, packed_values in zip(padded, packed):
        torch.testing.assert_close(layout.unpack(packed_values, ids.shape), padded_values, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("lengths, budget, count", [
    ([5, 9, 3, 9, 1, 7, 2, 8], 18, None), ([5, 9, 3, 9, 1, 7, 2, 8], 18, 6), ([5, 9, 3, 9, 1, 7, 2, 8], 100, 3),
    ([30, 2, 2, 2], 16, None), ([4] * 6, 8, None), ([4] * 6, 8, 6),
])
def test_token_budget_micro_batches_cover_every_row_once_within_budget(lengths, budget, count):
    from asymrl.update import micro_batches_needed, padded_tokens, token_budget_micro_batches

    groups = token_budget_micro_batches(lengths, budget, count)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert len(groups) == (count or micro_batches_needed(lengths, budget))
    for group in groups:
        assert group and (padded_tokens([lengths[i] for i in group]) <= budget or len(group) == 1)


def test_token_budget_micro_batches_by_hand():
    from asymrl.update import micro_batches_needed, token_budget_micro_batches

    lengths = [5, 9, 3, 9, 1, 7, 2, 8]
    # Longest first under 18 padded tokens: 9 9 (18) | 8 7 (16) | 5 3 2 (15) | 1; adding the 1 to
    # the third would make 4 x 5 = 20.
    assert token_budget_micro_batches(lengths, 18) == [[1, 3], [7, 5], [0, 2, 6], [4]]
    assert micro_batches_needed(lengths, 18) == 4
    # A row longer than the budget stands alone; the rest share.
    assert token_budget_micro_batches([30, 2, 2, 2], 16) == [[0], [1, 2, 3]]
    # Asked for fewer groups than a budget of 100 allows (1): the smallest budget giving 3 is 20,
    # so 9 9 (18) | 8 7 (16) | 5 3 2 1 (20).
    assert token_budget_micro_batches(lengths, 100, 3) == [[1, 3], [7, 5], [0, 2, 6, 4]]
    # Asked for more groups than the budget needs: a group of several rows is halved.
    assert token_budget_micro_batches([4] * 6, 8, 4) == [[0], [1], [2, 3], [4, 5]]
    with pytest.raises(ValueError):
        token_budget_micro_batches(lengths, 18, 9)


@pytest.mark.distributed
def test_kl_reference_under_zero3_equals_one_process(tmp_path):
    """The frozen KL reference stays whole on every rank under ZeRO-3 (transformers would partition
    it, and nothing outside DeepSpeed's engine gathers it): the loss equals one process's."""
    single = run_worker(tmp_path / "single.json", None, "kl")
    assert single["metrics"]["actor/kl_ref"] > 0
    distributed = run_worker(tmp_path / "zero3.json", "cpu_zero3.yaml", "kl")
    assert distributed["world"] == 2
    for key in ("actor/pg_loss", "actor/grad_norm"):  # the gradient carries the penalty
        assert distributed["metrics"][key] == pytest.approx(single["metrics"][key], rel=1e-5), key
    assert max_weight_difference(distributed["weights"], single["weights"]) < 1e-5


def tied_head_updater():
    """The embedded tiny policy (its LM head tied to the embeddings) behind a one-process updater."""
    from transformers import AutoModelForCausalLM

    from asymrl.toy.build import ensure_base_policy
    from asymrl.update import PolicyUpdater, UpdateConfig, build_accelerator

    model = AutoModelForCausalLM.from_pretrained(ensure_base_policy("tiny"))
    assert model.config.tie_word_embeddings
    return PolicyUpdater(build_accelerator(1, 4, 1.0), model, UpdateConfig(lr=1e-3, micro_batch_size=4))


def test_a_checkpoint_restores_the_step_counters_and_says_nothing_of_the_tied_head(tmp_path, caplog):
    import logging

    import torch

    from asymrl.checkpoint import load_checkpoint, save_checkpoint
    from asymrl.update import RolloutBatch

    updater = tied_head_updater()
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, 100, (8, 12), generator=generator)
    response_mask = (torch.arange(12)[None] >= 4).long().expand(8, 12)
    batch = RolloutBatch(input_ids, torch.ones_like(input_ids), response_mask)
    old_logprobs, _ = updater.logprobs(batch)
    advantages = torch.randn(8, 1, generator=generator) * response_mask
    updater.update(batch, advantages, old_logprobs, mini_batch_rows=4)  # two optimizer steps
    assert (updater.optimizer_steps, updater.skipped_steps) == (2, 0)
    with caplog.at_level(logging.WARNING):
        path = save_checkpoint(updater.accelerator, tmp_path, 1, {"step": 1}, keep_last=1)
    assert not [r.getMessage() for r in caplog.records if "Removed shared tensor" in r.getMessage()]
    resumed = tied_head_updater()
    assert resumed.optimizer_steps == 0
    load_checkpoint(resumed.accelerator, path)
    assert (resumed.optimizer_steps, resumed.skipped_steps) == (2, 0)
    assert resumed.scheduler.state_dict()["last_epoch"] == 2


def test_sign_gradient_norms_by_hand_and_the_update_untouched():
    """The two channels' gradient norms equal those of a plain backward of each channel's loss; the
    whole ratio-1 gradient is their sum (norm and cosine agree); ``.grad`` stays empty (nothing
    reaches the update that follows)."""
    import torch

    from asymrl.loss import PolicyLossConfig, aggregate, policy_loss
    from asymrl.update import RolloutBatch

    updater = tied_head_updater()
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, 100, (8, 12), generator=generator)
    response_mask = (torch.arange(12)[None] >= 4).long().expand(8, 12)
    batch = RolloutBatch(input_ids, torch.ones_like(input_ids), response_mask)
    advantages = torch.randn(8, 1, generator=generator) * response_mask
    norms = updater.sign_gradient_norms(batch, advantages)
    parameters = [p for p in updater.model.parameters() if p.requires_grad]
    assert all(p.grad is None for p in parameters)

    def hand_gradient(channel_advantages: torch.Tensor) -> torch.Tensor:
        logp, _ = updater.policy(input_ids, torch.ones_like(input_ids), response_mask)
        loss = aggregate(-channel_advantages * logp, response_mask)
        grads = torch.autograd.grad(loss, parameters)
        return torch.cat([g.flatten() for g in grads])

    pos = hand_gradient(advantages.clamp_min(0))
    neg = hand_gradient(advantages.clamp_max(0))
    assert norms["actor/sign/grad_norm_pos"] == pytest.approx(float(pos.norm()), rel=1e-5)
    assert norms["actor/sign/grad_norm_neg"] == pytest.approx(float(neg.norm()), rel=1e-5)
    assert norms["actor/sign/grad_share_pos"] == pytest.approx(float(pos.norm() / (pos.norm() + neg.norm())), rel=1e-5)
    assert norms["actor/sign/grad_cos"] == pytest.approx(float(pos @ neg / (pos.norm() * neg.norm())), rel=1e-4, abs=1e-6)
    logp, _ = updater.policy(input_ids, torch.ones_like(input_ids), response_mask)
    whole, _ = policy_loss(logp, logp.detach(), advantages, response_mask, PolicyLossConfig())
    whole_norm = torch.cat([g.flatten() for g in torch.autograd.grad(whole, parameters)]).norm()
    n_pos, n_neg, cos = (norms[f"actor/sign/{k}"] for k in ("grad_norm_pos", "grad_norm_neg", "grad_cos"))
    assert float(whole_norm) == pytest.approx((n_pos**2 + n_neg**2 + 2 * cos * n_pos * n_neg) ** 0.5, rel=1e-4)


def test_has_dropout_finds_dropout_modules_and_functional_attention_dropout():
    """Where the training-mode forward drops anything, old log-probs are not taken from the update."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from asymrl.update import has_dropout

    shape = dict(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2)
    assert not has_dropout(LlamaForCausalLM(LlamaConfig(**shape)))
    assert has_dropout(LlamaForCausalLM(LlamaConfig(attention_dropout=0.1, **shape)))  # functional, in the attention call
    assert has_dropout(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50, bos_token_id=0, eos_token_id=1)))
