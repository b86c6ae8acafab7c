"""The RLVR loop end to end on the tiny base policy (CPU): one process, resume after kill -9,
two processes under DeepSpeed ZeRO-2."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, SMALL_RUN, one_step_in_process, run_train, tensorboard_scalars

from asymrl.checkpoint import complete_checkpoints
from asymrl.metrics import read_metrics

COMPARED = ("reward/accuracy", "entropy/all", "actor/pg_loss", "actor/grad_norm", "groups/mixed_frac", "val/accuracy", "logp_increment/correct",
            "actor/optimizer_steps", "actor/skipped_steps", "alpha/pos", "alpha/neg")
# AsymGRPO (the default estimator) with a linear schedule of its exponents, 0.9 -> 0.5 and 0.4 -> 0.6
# over the run: the end-to-end and resume tests check it too (a run of its own would cost a start-up).
SCHEDULE = ("algorithm.alpha_schedule=linear", "algorithm.alpha_pos_end=0.5", "algorithm.alpha_neg_end=0.6")


def comparable(records: list[dict]) -> list[dict]:
    return [{k: r[k] for k in COMPARED if k in r} | {"step": r["step"]} for r in records]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[dict, list[dict], Path]:
    out = tmp_path_factory.mktemp("run") / "uninterrupted"
    summary = run_train(out, "train.total_steps=6", "train.save_every=2", "train.save_final=true", *SCHEDULE)
    return summary, read_metrics(out / "metrics.jsonl"), out


def test_a_few_steps_end_to_end(uninterrupted):
    summary, records, out = uninterrupted
    assert summary["steps"] == 6 and summary["world_size"] == 1 and summary["weights_in_sync"]
    for key in ("initial_val_accuracy", "final_val_accuracy", "best_val_accuracy", "initial_val_sampled_accuracy", "final_val_sampled_accuracy"):
        assert 0.0 <= summary[key] <= 1.0, key
    assert summary["best_val_accuracy"] >= max(summary["initial_val_accuracy"], summary["final_val_accuracy"])
    # One record per step: the final validation (sampled too) joins step 6's record, as step 3's joins it.
    assert [r["step"] for r in records] == [0, 1, 2, 3, 4, 5, 6]
    assert "val/accuracy" in records[3] and "val/sampled_accuracy" in records[6]
    steps = [r for r in records if "reward/accuracy" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    assert [r["alpha/pos"] for r in steps] == pytest.approx([0.9, 0.82, 0.74, 0.66, 0.58, 0.5])   # linear, logged every step
    assert [r["alpha/neg"] for r in steps] == pytest.approx([0.4, 0.44, 0.48, 0.52, 0.56, 0.6])
    for record in steps:
        assert 0 < record["entropy/all"] < 5 and record["response/length_mean"] > 5
        assert record["groups/all_solved_frac"] + record["groups/none_solved_frac"] + record["groups/mixed_frac"] == pytest.approx(1.0)
        assert record["actor/optimizer_steps"] > 0 and record["time/generate_tokens_per_s"] > 0
        # G = 4: pass@1 is the accuracy, pass@4 one minus the none-solved fraction, pass@2 between.
        assert record["pass_at_k/1"] == pytest.approx(record["reward/accuracy"])
        assert record["pass_at_k/4"] == pytest.approx(1 - record["groups/none_solved_frac"])
        assert record["pass_at_k/1"] <= record["pass_at_k/2"] <= record["pass_at_k/4"]
        assert 1 <= record["diversity/distinct_correct"] <= 4
        assert record["mismatch/abs_logprob_diff_max"] < 1e-3  # float32 engine and trainer
    assert any(k.startswith("cov/p=") for k in steps[0])
    # The best checkpoint is a transformers model directory holding the policy of the best step: the
    # base policy's weights if that was step 0, trained ones otherwise.
    import torch
    from transformers import AutoModelForCausalLM

    from asymrl.toy.build import ensure_base_policy

    best, base = (AutoModelForCausalLM.from_pretrained(path) for path in (out / "best", ensure_base_policy("tiny")))
    assert best.config.hidden_size == base.config.hidden_size and best.num_parameters() == base.num_parameters()
    unchanged = all(torch.equal(a, b) for a, b in zip(best.state_dict().values(), base.state_dict().values()))
    assert unchanged == (summary["best_step"] == 0), summary["best_step"]
    # train.save_final: the last step's policy (trained: not the base's), best/ itself when the best step is the last.
    final = AutoModelForCausalLM.from_pretrained(out / "final")
    assert not all(torch.equal(a, b) for a, b in zip(final.state_dict().values(), base.state_dict().values()))
    same_as_best = all(torch.equal(a, b) for a, b in zip(final.state_dict().values(), best.state_dict().values()))
    assert same_as_best == (summary["best_step"] == 6)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000004", "step_000006"]  # keep_last=2


def test_resume_after_kill_reproduces_the_uninterrupted_run(uninterrupted, tmp_path):
    _, reference, _ = uninterrupted
    out = tmp_path / "killed"
    # The run stops after logging step 5 (past its step-4 checkpoint) and is killed there, whatever
    # the machine's speed: the resumed run has a step of metrics to drop and redo.
    process = run_train(out, "train.total_steps=6", "train.save_every=2", *SCHEDULE, wait=False,
                        script=[str(ROOT / "tests" / "train_then_hang.py"), "5"])
    deadline = time.time() + 300
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("HANGING AFTER STEP 5") or time.time() > deadline:
            break
    assert lines and lines[-1].startswith("HANGING AFTER STEP 5"), "".join(lines[-40:])
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert complete_checkpoints(out)[-1].name == "step_000004"
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")][-1] == 5
    resumed = run_train(out, "train.total_steps=6", "train.save_every=2", *SCHEDULE)
    assert resumed["steps"] == 6
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [r["step"] for r in reference]
    for got, want in zip(comparable(records), comparable(reference)):
        assert got.keys() == want.keys()
        for key in got:
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7), (got["step"], key)
    # TensorBoard shows each step once, with the value of metrics.jsonl (the killed run's later steps purged).
    shown = tensorboard_scalars(out / "tensorboard" / "asymrl", "reward/accuracy")
    assert shown == [(r["step"], pytest.approx(r["reward/accuracy"])) for r in records if "reward/accuracy" in r]


@pytest.mark.distributed
@pytest.mark.parametrize("launch_config", ["cpu_zero2.yaml", "cpu_zero3.yaml"])
def test_two_processes_deepspeed(tmp_path, launch_config):
    """Each rank samples with its own engine, fed after every step from the (ZeRO-3: gathered) weights."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--main_process_port", "0", "--config_file", str(ROOT / "launch" / launch_config)]
    summary = run_train(tmp_path / "run", "train.total_steps=2", "train.save_every=0", launch=launch)
    assert summary["world_size"] == 2 and summary["weights_in_sync"] and summary["steps"] == 2
    records = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "reward/accuracy" in r]
    assert [r["step"] for r in records] == [1, 2]
    assert records[-1]["actor/optimizer_steps"] > 0


def test_kl_penalty_to_the_initial_policy(tmp_path):
    run_train(tmp_path / "kl", "train.total_steps=2", "train.save_every=0", "algorithm.kl_coef=0.05", "eval.every_steps=0", "eval.at_start=false")
    records = [r for r in read_metrics(tmp_path / "kl" / "metrics.jsonl") if "actor/kl_ref" in r]
    assert len(records) == 2
    assert records[0]["actor/kl_ref"] == pytest.approx(0.0, abs=1e-6)  # the first mini-batch is the reference
    assert records[1]["actor/kl_ref"] > 0


def test_config_errors_stop_the_run_with_the_key_named(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "algorithm.alpha_poss=0.5", "rollout.group_size=1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "did you mean 'algorithm.alpha_pos'" in result.stderr


def test_the_engine_sleeps_through_the_update_and_is_synced_after_waking(tmp_path):
    """vLLM's sleep mode frees the KV cache for the update; the new weights must be pushed only
    after wake-up (a push into a sleeping engine would be lost when it restores its weights)."""
    from asymrl.config import parse_args
    from asymrl.trainer import Trainer

    trainer = Trainer(parse_args([*SMALL_RUN, "rollout.vllm.sleep_mode=true", f"train.output_dir={tmp_path}"]))
    calls = []

    def recorded(name):
        original = getattr(trainer.engine, name)

        def call(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        return call

    for name in ("generate", "sleep", "wake_up", "update_weights"):
        setattr(trainer.engine, name, recorded(name))
    trainer.step(0, trainer.sampler.next_batch())
    assert calls == ["generate", "sleep", "wake_up", "update_weights"]
    trainer.engine.close()
    trainer.reward.close()


def test_a_reward_chosen_by_config_scores_the_rollouts(tmp_path):
    """reward.name and reward.kwargs reach the trainer's scoring, through the reward worker pool."""
    from asymrl.config import parse_args
    from asymrl.trainer import Trainer

    overrides = ["reward.name=reward_functions:constant", "reward.kwargs.value=1", f"train.output_dir={tmp_path}"]
    trainer = Trainer(parse_args([*SMALL_RUN, *overrides]))
    try:
        metrics = trainer.step(0, trainer.sampler.next_batch())
    finally:
        trainer.engine.close()
        trainer.reward.close()
    assert metrics["reward/mean"] == 1.0 and metrics["groups/all_solved_frac"] == 1.0
    assert [metrics[f"reward/{name}"] for name in ("timeouts", "errors", "crashes")] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("case", ["malformed", "empty", "missing_model"])
def test_bad_input_is_one_line_naming_key_or_file(case, tmp_path):
    """train.py reports a bad data file or model path as one message and exit code 2, not a traceback."""
    data = tmp_path / "problems.jsonl"
    data.write_text({"malformed": '{"problem": "1+1", "answer": "2"}\n{"problem": "2+2", "answer": \n',
                     "empty": "", "missing_model": ""}[case])
    extra = {"malformed": ["data.task=toy", f"data.train={data}"], "empty": ["data.task=toy", f"data.train={data}"],
             "missing_model": [f"model.path={tmp_path / 'no' / 'such' / 'model'}"]}[case]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), *SMALL_RUN, f"train.output_dir={tmp_path / 'run'}", *extra],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    expected = {"malformed": f"{data}:2: invalid JSON", "empty": f"data.train={str(data)!r}: 0 usable problems",
                "missing_model": "model.path="}[case]
    assert message.startswith("train.py: ") and expected in message, message


@pytest.mark.parametrize("mode,level", [("tis", "token"), ("tis", "sequence"), ("mask", "token")])
def test_rollout_correction_with_a_bfloat16_engine(tmp_path, monkeypatch, mode, level):
    """A bf16 engine beside the fp32 trainer: the step logs the mismatch, and the update receives
    the advantages weighted (tis) or masked (mask) exactly as computed here by hand."""
    import torch

    from asymrl.rollout import collate

    # REINFORCE's +1 / -1: every rollout carries an advantage for the correction to act on (this
    # short step's groups are often uniform, where GRPO-like estimators give 0 everywhere).
    seen = one_step_in_process(tmp_path, monkeypatch, "rollout.engine_dtype=bfloat16", f"algorithm.rollout_correction={mode}",
                               f"algorithm.rollout_correction_level={level}", "algorithm.rollout_correction_cap=1.01",
                               "algorithm.estimator=reinforce")
    assert bool((seen["rollout_advantage"].abs() == 1).all())
    completions = [c for group in seen["groups"] for c in group]
    engine = collate(completions, pad_token_id=0, with_engine_logprobs=True)["engine_logprobs"]
    mask = seen["batch"].response_mask.bool()
    delta = torch.where(mask, seen["old_logprobs"] - engine, 0.0)
    if level == "sequence":
        delta = delta.sum(dim=1, keepdim=True).expand_as(delta)
    if mode == "tis":
        weights = torch.exp(delta).clamp(max=1.01)
    else:
        weights = (delta.abs() <= math.log(1.01)).float()
    expected = seen["rollout_advantage"].reshape(-1, 1) * mask * weights
    assert torch.allclose(seen["token_advantage"], expected, atol=1e-6)

    metrics = seen["metrics"]
    abs_delta = (seen["old_logprobs"] - engine).abs()[mask]
    assert 0 < metrics["mismatch/abs_logprob_diff_mean"] < 0.1  # bf16 rounding, not another policy
    assert metrics["mismatch/abs_logprob_diff_mean"] == pytest.approx(float(abs_delta.mean()), rel=1e-5)
    assert metrics["mismatch/abs_logprob_diff_max"] == pytest.approx(float(abs_delta.max()), rel=1e-5)
    assert metrics["mismatch/kl_k3"] > 0
    kept = (weights > 0) & mask
    assert metrics["correction/kept_frac"] == pytest.approx(float(kept.sum() / mask.sum()), rel=1e-6)
    assert metrics["correction/weight_mean"] == pytest.approx(float((weights * kept).sum() / mask.sum()), rel=1e-5)
    # What the cap guarantees on every CPU (bf16 rounding decides the ratios, not these): no weight
    # above it; under tis the gap the engine's bf16 made moves some weight off 1 (so the test would
    # see a correction that was ignored); under mask every kept token lies within [1/cap, cap].
    assert float(weights.max()) <= 1.01 and metrics["correction/weight_mean"] <= 1.01
    if mode == "tis":
        assert bool((weights[mask] != 1.0).any())
    else:
        assert bool((delta.abs()[kept] <= math.log(1.01)).all())


def test_no_correction_leaves_advantages_alone_and_a_float32_engine_matches(tmp_path, monkeypatch):
    """Also the sign-split gradient norms: the step's one optimizer step is taken at ratio 1, so its
    gradient norm is that of the sum of the two channels' gradients."""
    import torch

    seen = one_step_in_process(tmp_path, monkeypatch, "log.sign_grad_norm_every=1", "train.prompts_per_step=8",
                               "train.mini_batch_prompts=8")
    mask = seen["batch"].response_mask
    assert torch.equal(seen["token_advantage"], seen["rollout_advantage"].reshape(-1, 1) * mask)
    metrics = seen["metrics"]
    assert metrics["mismatch/abs_logprob_diff_max"] < 1e-4
    assert not any(key.startswith("correction/") for key in metrics)
    assert metrics["actor/optimizer_steps"] == 1
    n_pos, n_neg, cos = (metrics[f"actor/sign/{k}"] for k in ("grad_norm_pos", "grad_norm_neg", "grad_cos"))
    assert n_pos > 0 and n_neg > 0 and -1 <= cos <= 1
    assert metrics["actor/sign/grad_share_pos"] == pytest.approx(n_pos / (n_pos + n_neg))
    assert metrics["actor/grad_norm"] == pytest.approx((n_pos**2 + n_neg**2 + 2 * cos * n_pos * n_neg) ** 0.5, rel=1e-3)


def test_first_mini_batch_old_logprobs_from_the_update_equal_a_separate_pass(tmp_path, monkeypatch):
    """train.old_logprobs_from_update (the default) spares the log-prob pass over the first
    mini-batch: the step's old log-probs, entropies and metrics are the separate pass's (two
    mini-batches: the second's still come from the pass). The policy runs sdpa_gqa."""
    import torch

    two_mini_batches = ("train.prompts_per_step=8", "train.mini_batch_prompts=4")
    recorded = one_step_in_process(tmp_path / "recorded", monkeypatch, *two_mini_batches)
    computed = one_step_in_process(tmp_path / "computed", monkeypatch, *two_mini_batches, "train.old_logprobs_from_update=false")
    assert recorded["attn_implementation"] == computed["attn_implementation"] == "sdpa_gqa"
    assert torch.equal(recorded["batch"].input_ids, computed["batch"].input_ids)  # the same rollouts
    assert (recorded["first_row"], computed["first_row"]) == (16, 0)  # the pass skips 4 prompts x 4 rollouts...
    for key in ("old_logprobs", "old_entropy"):  # ...which the update fills in
        torch.testing.assert_close(recorded[key], computed[key], rtol=0, atol=1e-5)
    differing = {key for key, value in computed["metrics"].items()
                 if not key.startswith("time/") and recorded["metrics"][key] != pytest.approx(value, rel=1e-4, abs=1e-6)}
    assert differing == {"batching/padded_frac"}  # (over fewer passes)
    assert recorded["metrics"].keys() == computed["metrics"].keys()
    assert recorded["metrics"]["actor/optimizer_steps"] == 2 and computed["metrics"]["entropy/all"] > 0


def test_top_entropy_quantile_keeps_the_advantage_of_forking_tokens_only(tmp_path, monkeypatch):
    """The 80/20 rule: the update receives the advantage on the step's top-20%-entropy tokens
    (by the sampling policy's entropy) and 0 elsewhere."""
    import torch

    seen = one_step_in_process(tmp_path, monkeypatch, "algorithm.top_entropy_quantile=0.2")
    mask = seen["batch"].response_mask.bool()
    entropy = seen["old_entropy"]
    threshold = torch.quantile(entropy[mask], 0.8)
    kept = mask & (entropy >= threshold)
    expected = seen["rollout_advantage"].reshape(-1, 1) * mask * kept
    assert torch.equal(seen["token_advantage"], expected)
    assert 0.15 < kept.sum() / mask.sum() < 0.25


@pytest.mark.parametrize("variant,marker", [("clip_cov", "actor/cov_cut_frac"), ("kl_cov", "actor/cov_kl_frac"),
                                            ("gspo", "actor/clip_frac_high")])
def test_each_entropy_control_policy_loss_trains_a_step(tmp_path, monkeypatch, variant, marker):
    import torch

    import functools

    from asymrl.loss import POLICY_LOSSES

    # A spy on the variant proves that the update ran it (a variant silently replaced by ppo would
    # pass every check below on metrics alone: clip_cov cuts nothing on most small steps).
    real, calls = POLICY_LOSSES.get(variant), []

    @functools.wraps(real)
    def spy(logprobs, *args, **kwargs):
        calls.append(logprobs.shape)
        return real(logprobs, *args, **kwargs)

    monkeypatch.setitem(POLICY_LOSSES._entries, variant, spy)
    seen = one_step_in_process(tmp_path, monkeypatch, f"algorithm.policy_loss={variant}", "train.prompts_per_step=8")
    assert len(calls) == seen["metrics"]["actor/optimizer_steps"] * 2  # mini-batches of 16 rows in micro-batches of 8
    metrics = seen["metrics"]
    assert seen["rollout_advantage"].abs().sum() > 0           # some group of 4 is mixed: a gradient to take
    assert metrics[marker] >= 0 and math.isfinite(metrics["actor/pg_loss"]) and metrics["actor/grad_norm"] > 0
    assert metrics["actor/optimizer_steps"] == 2
    # the sign-split view of the update
    has_positive = bool((seen["rollout_advantage"] > 0).any())
    assert ("actor/sign/ratio_mean_pos" in metrics) == has_positive
    if variant == "kl_cov":
        assert 0 < metrics[marker] <= 0.05       # the top 0.2% by covariance, at least one token per micro-batch
    assert torch.equal(seen["token_advantage"], seen["rollout_advantage"].reshape(-1, 1) * seen["batch"].response_mask)


def test_entropy_advantage_inside_the_step(tmp_path, monkeypatch):
    """algorithm.entropy_adv_alpha: the update receives A_t + min(alpha H_t, |A_t| / kappa) on response
    tokens, H_t the sampling policy's entropy (its separate pass, not the update's forward)."""
    import torch

    seen = one_step_in_process(tmp_path, monkeypatch, "algorithm.entropy_adv_alpha=0.4", "algorithm.entropy_adv_kappa=2.0",
                               "algorithm.estimator=reinforce")
    mask = seen["batch"].response_mask.float()
    base = seen["rollout_advantage"].reshape(-1, 1) * mask
    expected = (base + torch.minimum(0.4 * seen["old_entropy"], base.abs() / 2.0)) * mask
    torch.testing.assert_close(seen["token_advantage"], expected)
    assert seen["first_row"] == 0 and not torch.equal(expected, base)  # its own pass, and a bonus that does something


@pytest.mark.parametrize("batching", [("train.max_tokens_per_micro_batch=256",), ("train.max_tokens_per_micro_batch=256", "train.packing=true")])
def test_a_token_budget_through_the_trainer_gives_the_fixed_count_step(tmp_path, monkeypatch, batching):
    """The trainer's step with token-budget micro-batches (and packing) equals the fixed-count step on
    the same rollouts: loss, gradient norm, entropy and the log-prob increment, one mini-batch per step."""
    one = ("train.prompts_per_step=4", "train.mini_batch_prompts=4")
    fixed = one_step_in_process(tmp_path / "fixed", monkeypatch, *one)
    budget = one_step_in_process(tmp_path / "budget", monkeypatch, *one, *batching)
    import torch

    assert torch.equal(fixed["batch"].input_ids, budget["batch"].input_ids)
    for key in ("actor/pg_loss", "actor/grad_norm", "entropy/all", "logp_increment/correct", "actor/optimizer_steps"):
        if key in fixed["metrics"]:
            assert budget["metrics"][key] == pytest.approx(fixed["metrics"][key], rel=1e-4, abs=1e-6), key
    assert budget["metrics"]["batching/padded_frac"] <= fixed["metrics"]["batching/padded_frac"]


def test_prompts_longer_than_max_prompt_tokens_are_dropped_from_training(tmp_path):
    """data.max_prompt_tokens: training problems whose rendered prompt is longer are left out (and
    counted); too few left to fill a step is an error naming the key and the template."""
    from transformers import AutoTokenizer

    from asymrl import trainer as trainer_module
    from asymrl.config import parse_args
    from asymrl.data import DataError, load_problems
    from asymrl.prompts import render_prompt
    from asymrl.toy.build import ensure_base_policy

    tokenizer = AutoTokenizer.from_pretrained(ensure_base_policy("tiny"))
    problems, _ = load_problems("toy", "train")
    lengths = [len(tokenizer(render_prompt(p["problem"], tokenizer, "{problem}"), add_special_tokens=False)["input_ids"]) for p in problems]
    limit = sorted(lengths)[len(lengths) // 2]  # about half the prompts are longer
    config = parse_args([*SMALL_RUN, f"data.max_prompt_tokens={limit}", "log.trackers=[]", f"train.output_dir={tmp_path / 'a'}"])
    trainer = trainer_module.Trainer(config)
    try:
        kept = {p["id"] for p in trainer.train_problems}
        assert kept == {p["id"] for p, length in zip(problems, lengths) if length <= limit}
        assert 0 < len(kept) < len(problems)
    finally:
        trainer.reward.close()
        trainer.engine.close()
    too_short = parse_args([*SMALL_RUN, "data.max_prompt_tokens=3", "log.trackers=[]", f"train.output_dir={tmp_path / 'b'}"])
    with pytest.raises(DataError, match=r"0 usable problems .* longer than data.max_prompt_tokens=3 with data.prompt_template='\{problem\}'"):
        trainer_module.Trainer(too_short)
