"""Trainer knobs on tiny in-process runs of the toy task: the lr schedules and warm-up, several PPO
epochs per step, the wall-clock budget (stop, checkpoint, resume) and gradient checkpointing.
(vLLM's sleep / wake-up: tests/test_rollout.py, with the other vLLM tests.)"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from asymrl.checkpoint import complete_checkpoints
from asymrl.config import build_config
from asymrl.metrics import read_metrics
from asymrl.trainer import Trainer
from helpers import ROOT, SMALL_RUN

LR = 1e-3


def knobs(output_dir: Path, **overrides) -> dict:
    """A tiny run: the toy task and policy, the transformers engine, 8 prompts x 4 rollouts of up to 48
    tokens a step (mixed groups at seed 3: a gradient to follow), 2 steps, the final validation on 4
    problems, nothing else."""
    return {
        "model.path": "toy:tiny", "data.train": "toy", "data.validation": "toy", "data.prompt_template": "{problem}",
        "rollout.backend": "transformers", "rollout.max_new_tokens": 48, "rollout.group_size": 4,
        "train.prompts_per_step": 8, "train.mini_batch_prompts": 8, "train.micro_batch_size": 16, "train.lr": LR,
        "train.seed": 3, "train.total_steps": 2, "train.save_every": 0, "eval.at_start": False, "eval.every_steps": 0,
        "eval.max_problems": 4, "eval.sampled_n": 0, "log.trackers": [], "log.progress_bar": False,
        "train.output_dir": str(output_dir), **overrides,
    }


def step_records(output_dir: Path) -> list[dict]:
    return [r for r in read_metrics(output_dir / "metrics.jsonl") if "actor/lr" in r]


# -- lr schedules and warm-up ----------------------------------------------------------------------

def multiplier_by_hand(schedule: str, step: int, warmup: int, total: int) -> float:
    """The lr multiplier at optimizer step ``step`` (0-based): linear warm-up to 1 over ``warmup`` steps,
    then constant, half a cosine to 0, or a straight line to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / (total - warmup))
    return {"constant": 1.0, "cosine": (1 + math.cos(math.pi * progress)) / 2, "linear": 1 - progress}[schedule]


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear"])
def test_lr_schedule_and_warm_up_follow_the_formula_at_every_optimizer_step(tmp_path, schedule):
    # 3 mini-batches of one prompt a step x 2 steps: optimizer steps 0..5, warm-up over the first 2,
    # the schedule over the 4 after (progress 0, 1/4, 1/2, 3/4).
    config = build_config(knobs(tmp_path, **{"train.prompts_per_step": 3, "train.mini_batch_prompts": 1,
                                             "train.micro_batch_size": 4, "train.lr_schedule": schedule,
                                             "train.warmup_steps": 2}))
    trainer = Trainer(config)
    used: list[float] = []  # the lr each optimizer step is taken with
    trainer.updater._raw_optimizer().register_step_pre_hook(lambda optimizer, args, kwargs: used.append(optimizer.param_groups[0]["lr"]))
    trainer.train()
    total = 6
    assert used == pytest.approx([LR * multiplier_by_hand(schedule, s, 2, total) for s in range(total)], rel=1e-12)
    # The logged lr is the one the next optimizer step takes (after this step's 3).
    records = step_records(tmp_path)
    assert [r["actor/optimizer_steps"] for r in records] == [3, 6]
    assert [r["actor/lr"] for r in records] == pytest.approx([LR * multiplier_by_hand(schedule, s, 2, total) for s in (3, 6)], rel=1e-12)


# -- several PPO epochs over a step's rollouts -----------------------------------------------------

def test_ppo_epochs_take_an_optimizer_step_each_and_the_second_is_off_policy(tmp_path, monkeypatch):
    import asymrl.update as update_module

    ratios: list[float] = []  # per loss call (one per micro-batch): max |ratio - 1| over its tokens
    policy_loss = update_module.policy_loss

    def recording_policy_loss(logprobs, old_logprobs, advantages, mask, *args, **kwargs):
        ratio = torch.exp(logprobs.detach() - old_logprobs)
        ratios.append(float((ratio - 1)[mask.bool()].abs().max()))
        return policy_loss(logprobs, old_logprobs, advantages, mask, *args, **kwargs)

    monkeypatch.setattr(update_module, "policy_loss", recording_policy_loss)
    Trainer(build_config(knobs(tmp_path, **{"train.ppo_epochs": 2, "train.total_steps": 1}))).train()
    (record,) = step_records(tmp_path)
    # 1 step x 2 epochs x 1 mini-batch; 32 rollouts in micro-batches of 16: 2 loss calls an epoch.
    assert record["actor/optimizer_steps"] == 2 and len(ratios) == 4
    # The first epoch runs at the policy that sampled (ratio 1); the second after an optimizer step
    # of lr 1e-3 on every weight, which moves the log-probs far from the old ones, and clips some.
    assert max(ratios[:2]) < 1e-5
    assert min(ratios[2:]) > 0.05
    assert record["actor/clip_frac_low"] + record["actor/clip_frac_high"] > 0


# -- the wall-clock budget -------------------------------------------------------------------------

def test_max_wall_s_stops_after_the_step_that_spends_it_checkpoints_and_resumes(tmp_path):
    # A budget of 1 ns is spent by any first step, on any machine: the run stops after step 1 of 3.
    stopped = Trainer(build_config(knobs(tmp_path, **{"train.total_steps": 3, "train.max_wall_s": 1e-9,
                                                      "train.save_every": 100}))).train()
    assert stopped["steps"] == 1 and stopped["total_steps"] == 3
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1]
    assert [path.name for path in complete_checkpoints(tmp_path)] == ["step_000001"]  # saved on stopping, not at 100
    first = step_records(tmp_path)[0]
    # Run again without the budget: it resumes from that checkpoint and runs step 2 only.
    resumed = Trainer(build_config(knobs(tmp_path, **{"train.save_every": 100}))).train()
    assert resumed["steps"] == 2
    records = step_records(tmp_path)
    assert [r["step"] for r in records] == [1, 2] and records[0] == first
    assert records[1]["actor/optimizer_steps"] == 2 * first["actor/optimizer_steps"] == 2  # the counter continued


# -- gradient checkpointing ------------------------------------------------------------------------

def one_step(output_dir: Path, checkpointing: bool) -> tuple[dict, dict[str, torch.Tensor], int]:
    """One step's logged metrics, the weights after it, and how often the policy's first decoder layer
    started a forward pass (a checkpointed layer starts one again in the backward pass, which PyTorch
    may stop early once it has what it needs: counted at the start, by a pre-hook)."""
    trainer = Trainer(build_config(knobs(output_dir, **{"train.total_steps": 1, "model.gradient_checkpointing": checkpointing})))
    model = trainer.updater.model
    assert model.is_gradient_checkpointing == checkpointing
    calls = []
    model.model.layers[0].register_forward_pre_hook(lambda module, args: calls.append(1))
    trainer.train()
    weights = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    return step_records(output_dir)[0], weights, len(calls)


def test_gradient_checkpointing_changes_memory_not_the_update(tmp_path):
    """Recomputing activations in the backward pass gives the same loss, gradient norm and weights as
    keeping them (float32: equal to rounding)."""
    plain, plain_weights, plain_calls = one_step(tmp_path / "plain", False)
    checkpointed, checkpointed_weights, checkpointed_calls = one_step(tmp_path / "checkpointed", True)
    # The update's 2 micro-batches ran the layer once more each: checkpointing was in effect.
    assert checkpointed_calls == plain_calls + 2
    assert plain["actor/grad_norm"] > 0
    for key in ("actor/pg_loss", "actor/grad_norm", "actor/entropy", "actor/clip_frac_low", "reward/accuracy"):
        assert checkpointed[key] == pytest.approx(plain[key], rel=1e-5, abs=1e-8), key
    for name, tensor in plain_weights.items():
        torch.testing.assert_close(checkpointed_weights[name], tensor, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("sampled_n, at_start", [(0, True), (2, False)])
def test_the_closing_lines_say_what_was_measured(tmp_path, capsys, sampled_n, at_start):
    """train.py's last lines: no sampled-accuracy line when eval.sampled_n=0 (none was taken, not
    'n/a -> n/a'), and a start that was not measured says so."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_script", ROOT / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    summary = script.main([*SMALL_RUN, "train.total_steps=1", "eval.max_problems=8", "eval.every_steps=0", "log.trackers=[]",
                           f"eval.sampled_n={sampled_n}", f"eval.at_start={str(at_start).lower()}", f"train.output_dir={tmp_path}"])
    printed = capsys.readouterr().out
    greedy = next(line for line in printed.splitlines() if line.startswith("validation accuracy, greedy:"))
    assert ("not measured (eval.at_start=false) ->" in greedy) == (not at_start)
    assert ("validation accuracy, sampled:" in printed) == (sampled_n > 0)
    assert f"{summary['steps']} steps in" in printed and summary["steps"] == 1
