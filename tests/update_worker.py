"""Runs one PPO update of a tiny seeded Llama on fixed rollouts; launched by tests/test_update.py
in one process or under ``accelerate launch`` (DDP / DeepSpeed ZeRO) with several processes.

    python tests/update_worker.py OUT.json [nan] [tokens=N] [kl] [packed] [on_policy] [from_update]

With ``nan`` the first mini-batch's advantages are NaN: its optimizer step must be skipped. With
``tokens=N`` micro-batches are formed by a budget of N padded tokens instead of MICRO rows each.
With ``kl`` the loss has a KL penalty to a frozen reference loaded from the initial weights the way
the trainer loads it (``update.load_frozen_policy``), which must stay whole under ZeRO-3. With
``packed`` each micro-batch's sequences are packed into rows (``UpdateConfig.packing``). With
``on_policy`` the old log-probs are the current policy's as they are (not perturbed); with
``from_update`` too, the first mini-batch's are not computed beforehand but recorded by the update's
first forward (``old_entropy``); both are written out (``old_logprobs``, ``old_entropy``). The weights
are written before the update (``initial_weights``) and after it (``weights``).
"""

from __future__ import annotations

import json
import sys
import tempfile

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from helpers import ROWS, VOCAB, fixed_rollouts

from asymrl.loss import PolicyLossConfig
from asymrl.rollout import iter_full_parameters
from asymrl.update import PolicyUpdater, RolloutBatch, UpdateConfig, build_accelerator, cpu_thread_setup, load_frozen_policy, release_process_group

MINI_BATCH_ROWS, MICRO = 4, 2  # two optimizer steps over the 8 rollouts, in micro-batches of 2


def main(out_path: str, poison: bool = False, max_tokens: int | None = None, kl: bool = False, packed: bool = False,
         on_policy: bool = False, from_update: bool = False) -> None:
    cpu_thread_setup()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    ))
    # Named as in the state dict written after the update (the policy wrapper holds the model as `model`).
    initial_weights = {f"model.{k}": v.float().flatten().tolist() for k, v in model.state_dict().items()}  # before any step
    reference_dir = tempfile.mkdtemp()
    if kl:
        model.save_pretrained(reference_dir)
    batch, advantages = fixed_rollouts()
    probe_world = int(__import__("os").environ.get("WORLD_SIZE", "1"))
    rows_per_rank = MINI_BATCH_ROWS // probe_world
    micro = MICRO if max_tokens is None else 1
    accelerator = build_accelerator(rows_per_rank // micro, micro, grad_clip=1.0)
    rank, world = accelerator.process_index, accelerator.num_processes
    updater = PolicyUpdater(accelerator, model, UpdateConfig(
        lr=1e-3, micro_batch_size=MICRO, max_tokens_per_micro_batch=max_tokens, packing=packed, temperature=0.8,
        loss=PolicyLossConfig(eps_low=0.2, eps_high=0.28, aggregation="token-mean", kl_coef=0.5 if kl else 0.0),
    ))
    # Each rank takes its share of every mini-batch: rows interleaved so that rank r of a 2-rank run
    # holds rows {r, r+2, ...} of each mini-batch of 4 -- the same mini-batches as one process.
    order = torch.cat([torch.arange(start + rank, start + MINI_BATCH_ROWS, world) for start in range(0, ROWS, MINI_BATCH_ROWS)])
    local = RolloutBatch(batch.input_ids[order], batch.attention_mask[order], batch.response_mask[order])
    old_logprobs, old_entropy = updater.logprobs(local, first_row=rows_per_rank if from_update else 0)
    if not on_policy:  # perturbed, so that the ratio is not 1 and both clip bounds matter
        old_logprobs = old_logprobs + 0.3 * torch.sin(torch.arange(old_logprobs.shape[1])[None] + 7.0 * order[:, None])
    token_advantages = advantages[order] * local.response_mask
    try:  # refused under ZeRO-3, whose ranks hold parameter shards
        sign_gradient = updater.sign_gradient_norms(local, token_advantages)
    except ValueError:
        sign_gradient = {"refused": True}
    if poison:
        token_advantages[: rows_per_rank] = float("nan")
    ref_logprobs = None
    if kl:
        reference = load_frozen_policy(reference_dir, "float32", accelerator.device)
        # Perturbed like the old log-probs, so that the penalty is not zero at the first step.
        ref_logprobs = (updater.logprobs(local, reference)[0] - 0.2 * torch.cos(torch.arange(local.input_ids.shape[1])[None] + order[:, None])) * local.response_mask
    old_logprobs = old_logprobs * local.response_mask
    metrics = updater.update(local, token_advantages, old_logprobs, rows_per_rank, ref_logprobs, old_entropy=old_entropy if from_update else None)
    metrics.update(updater.take_padding_statistics())
    state = accelerator.get_state_dict(updater.policy)
    if accelerator.is_main_process:
        weights = {k: v.float().flatten().tolist() for k, v in state.items()}
        json.dump({"world": world, "metrics": metrics, "sign_gradient": sign_gradient, "weights": weights, "initial_weights": initial_weights,
                   "old_logprobs": old_logprobs.tolist(), "old_entropy": old_entropy.tolist()}, open(out_path, "w"))
    # Weights identical across ranks: compare each rank's full-parameter checksum.
    # (gathered parameter by parameter on every rank: under ZeRO-3 get_state_dict fills rank 0 only)
    checksum = torch.tensor([sum(float(v.double().sum()) for _, v in iter_full_parameters(updater.model))])
    gathered = accelerator.gather(checksum.to(accelerator.device)).cpu().tolist()
    if accelerator.is_main_process:
        record = json.load(open(out_path))
        record["rank_checksums"] = gathered
        json.dump(record, open(out_path, "w"))
    release_process_group()


if __name__ == "__main__":
    options = sys.argv[2:]
    tokens = [int(o.split("=", 1)[1]) for o in options if o.startswith("tokens=")]
    main(sys.argv[1], poison="nan" in options, max_tokens=tokens[0] if tokens else None, kl="kl" in options, packed="packed" in options,
         on_policy="on_policy" in options, from_update="from_update" in options)
