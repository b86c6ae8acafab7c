"""The per-token shaping stages, each against a hand computation, and their order and selection."""

from __future__ import annotations

import math

import pytest
import torch

from asymrl import shaping
from asymrl.config import build_config


def tokens(**extra) -> dict[str, torch.Tensor]:
    """Three rollouts of up to 4 response tokens (the last one padded), their advantages broadcast."""
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]])
    rollout_advantage = torch.tensor([0.5, -1.0, 2.0])
    named = {"rollout_advantage": rollout_advantage, "advantage": rollout_advantage.reshape(-1, 1) * mask, "response_mask": mask,
             "loss_mask": mask.long(), "entropy": torch.tensor([[0.1, 0.9, 0.4, 0.3], [2.0, 0.05, 0.0, 0.0], [0.6, 0.2, 1.5, 0.0]]),
             "response_lengths": torch.tensor([4, 2, 3]), "truncated": torch.tensor([True, False, False])}
    return {**named, **extra}


def config(**values):
    return build_config({key.replace("__", "."): value for key, value in values.items()})


def test_the_stages_a_config_switches_on_in_their_order():
    assert shaping.available() == sorted(["overlong", "entropy_advantage", "rollout_correction", "top_entropy", "mask_truncated"])
    assert [s.name for s in shaping.stages_for(config())] == []
    everything = config(algorithm__overlong_buffer=2, algorithm__entropy_adv_alpha=0.4, algorithm__rollout_correction="tis",
                        algorithm__top_entropy_quantile=0.2, algorithm__mask_truncated=True)
    assert [s.name for s in shaping.stages_for(everything)] == ["overlong", "entropy_advantage", "rollout_correction", "top_entropy",
                                                                "mask_truncated"]
    # Those that read the old policy's values (or change the tokens its forward computes) need their own pass.
    assert {s.name for s in shaping.stages_for(everything) if s.needs_old_pass} == {"entropy_advantage", "rollout_correction",
                                                                                  "top_entropy", "mask_truncated"}


def test_overlong_adds_the_soft_penalty_to_the_rollout_and_its_tokens():
    # max_new_tokens 4, buffer 2: lengths 4, 2, 3 -> penalties -1, 0, -0.5, scaled by 0.5.
    run = config(rollout__max_new_tokens=4, algorithm__overlong_buffer=2, algorithm__overlong_penalty=0.5)
    shaped = shaping.overlong(tokens(), run)
    expected_rollout = torch.tensor([0.5 - 0.5, -1.0, 2.0 - 0.25])
    torch.testing.assert_close(shaped.rollout_advantage, expected_rollout)
    torch.testing.assert_close(shaped.advantage, expected_rollout.reshape(-1, 1) * tokens()["response_mask"])
    torch.testing.assert_close(shaped.diagnostics["overlong_penalty"], torch.tensor([-1.0, 0.0, -0.5]))


def test_entropy_advantage_by_hand():
    shaped = shaping.entropy_advantage_stage(tokens(), config(algorithm__entropy_adv_alpha=0.4, algorithm__entropy_adv_kappa=2.0))
    named = tokens()
    for row in range(3):
        for column in range(4):
            a, h, valid = (float(named[k][row, column]) for k in ("advantage", "entropy", "response_mask"))
            expected = (a + min(0.4 * h, abs(a) / 2.0)) * valid
            assert float(shaped.advantage[row, column]) == pytest.approx(expected, abs=1e-7), (row, column)


@pytest.mark.parametrize("mode, level", [("tis", "token"), ("tis", "sequence"), ("mask", "token")])
def test_rollout_correction_by_hand(mode, level):
    old = torch.tensor([[-1.0, -2.0, -0.5, -0.1], [-0.2, -0.3, 0.0, 0.0], [-1.5, -0.7, -0.9, 0.0]])
    engine = old - torch.tensor([[0.0, 0.5, -0.2, 0.01], [0.03, 0.0, 0.0, 0.0], [-0.4, 0.0, 0.02, 0.0]])
    named = tokens(old_logprobs=old, engine_logprobs=engine)
    run = config(algorithm__rollout_correction=mode, algorithm__rollout_correction_level=level, algorithm__rollout_correction_cap=1.5)
    shaped = shaping.rollout_correction(named, run)
    delta = (old - engine) * named["response_mask"]
    log_ratio = delta.sum(dim=1, keepdim=True).expand_as(delta) if level == "sequence" else delta
    if mode == "tis":
        weights = torch.exp(log_ratio).clamp(max=1.5)
    else:
        weights = (log_ratio.abs() <= math.log(1.5)).float()
    torch.testing.assert_close(shaped.advantage, named["advantage"] * weights * named["response_mask"])
    kept = (weights > 0).float() * named["response_mask"]
    torch.testing.assert_close(shaped.diagnostics["correction_kept_tokens"], kept.sum(dim=1))
    torch.testing.assert_close(shaped.diagnostics["correction_weight_sum"], (weights * kept).sum(dim=1))


def test_rollout_correction_without_engine_log_probs_is_a_config_error():
    from asymrl.config import ConfigError

    with pytest.raises(ConfigError, match="reports no log-probs of its samples"):
        shaping.rollout_correction(tokens(old_logprobs=torch.zeros(3, 4)), config(algorithm__rollout_correction="tis"))


def test_top_entropy_keeps_the_highest_entropy_share():
    shaped = shaping.top_entropy(tokens(), config(algorithm__top_entropy_quantile=0.25))
    # 9 valid tokens; the top quarter by entropy (threshold at the 75% quantile, 0.9): 2.0, 1.5, 0.9.
    kept = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]], dtype=torch.float32)
    torch.testing.assert_close(shaped.advantage, tokens()["advantage"] * kept)


def test_mask_truncated_drops_truncated_rows_from_the_loss_mask_only():
    shaped = shaping.mask_truncated(tokens(), config(algorithm__mask_truncated=True))
    assert shaped.advantage is None
    assert shaped.loss_mask.tolist() == [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]]


def test_apply_runs_the_stages_in_order_each_seeing_the_last():
    run = config(rollout__max_new_tokens=4, algorithm__overlong_buffer=2, algorithm__entropy_adv_alpha=0.4,
                 algorithm__mask_truncated=True)
    shaped, diagnostics = shaping.apply(shaping.stages_for(run), tokens(), run)
    after_overlong = shaping.overlong(tokens(), run)
    expected = shaping.entropy_advantage_stage({**tokens(), "advantage": after_overlong.advantage}, run).advantage
    torch.testing.assert_close(shaped["advantage"], expected)  # entropy advantage on the penalised advantage
    torch.testing.assert_close(shaped["rollout_advantage"], after_overlong.rollout_advantage)
    assert shaped["loss_mask"][0].sum() == 0 and set(diagnostics) == {"overlong_penalty"}


def test_a_stage_is_one_registration(monkeypatch):
    @shaping.register("halve", enabled=lambda config: config.algorithm.eps_high > 0.25)
    def halve(named, config):
        return shaping.Shaped(advantage=named["advantage"] / 2)

    assert [s.name for s in shaping.stages_for(config(algorithm__eps_high=0.28))] == ["halve"]
    assert shaping.stages_for(config()) == []
    shaped, _ = shaping.apply(shaping.stages_for(config(algorithm__eps_high=0.28)), tokens(), config())
    torch.testing.assert_close(shaped["advantage"], tokens()["advantage"] / 2)
