"""DAPO's overlong handling (asymrl.overlong): the soft penalty and overlong filtering by hand, and
one trainer step with both on hand-checkable rollouts."""

from __future__ import annotations

import pytest
import torch
from helpers import one_step_in_process

from asymrl.config import ConfigError, build_config
from asymrl.overlong import soft_overlong_penalty, untruncated_response_mask


def test_soft_overlong_penalty_by_hand():
    # L_max 10, L_cache 4: free up to 6 tokens, then -1/4 per token, -1 at 10 and beyond.
    lengths = torch.tensor([[5, 6, 7], [9, 10, 12]])
    expected = torch.tensor([[0.0, 0.0, -0.25], [-0.75, -1.0, -1.0]])
    assert torch.equal(soft_overlong_penalty(lengths, 10, 4), expected)
    assert torch.equal(soft_overlong_penalty(lengths, 10, 10)[0], torch.tensor([-0.5, -0.6, -0.7]))
    for buffer in (0, 11):
        with pytest.raises(ValueError, match="overlong buffer must be in"):
            soft_overlong_penalty(lengths, 10, buffer)


def test_overlong_filtering_zeroes_truncated_rows():
    mask = torch.tensor([[0, 1, 1], [0, 1, 0], [1, 1, 1]])
    out = untruncated_response_mask(mask, torch.tensor([False, True, False]))
    assert out.tolist() == [[0, 1, 1], [0, 0, 0], [1, 1, 1]] and out.dtype == mask.dtype


def test_bad_overlong_settings_are_named():
    with pytest.raises(ConfigError, match=r"algorithm.overlong_buffer: must be in \(0, rollout.max_new_tokens=64\]"):
        build_config({"rollout.max_new_tokens": 64, "algorithm.overlong_buffer": 65})
    with pytest.raises(ConfigError, match="algorithm.overlong_penalty: must be >= 0"):
        build_config({"algorithm.overlong_penalty": -1})


def test_a_step_with_the_soft_penalty_and_overlong_filtering(tmp_path, monkeypatch):
    """On the paths task (answers of 11-27 tokens) with 16 new tokens at most, some answers are cut.
    The update gets the estimator's advantage plus 0.5 x the penalty on every kept token, and no token
    of a truncated response."""
    seen = one_step_in_process(tmp_path, monkeypatch, "model.path=toy:paths", "data.train=paths", "data.validation=paths",
                               "reward.name=paths", "rollout.max_new_tokens=16", "algorithm.overlong_buffer=6",
                               "algorithm.overlong_penalty=0.5", "algorithm.mask_truncated=true", "train.prompts_per_step=8")
    completions = [c for group in seen["groups"] for c in group]
    truncated = torch.tensor([c.finish_reason == "length" for c in completions])
    lengths = torch.tensor([float(len(c.response_ids)) for c in completions])
    assert truncated.any() and not truncated.all()
    penalty = torch.where(lengths <= 10, 0.0, ((10 - lengths) / 6).clamp(min=-1.0))
    full_mask = torch.zeros_like(seen["batch"].response_mask)
    for row, completion in enumerate(completions):
        start = len(completion.prompt_ids)
        full_mask[row, start : start + len(completion.response_ids)] = 1
    assert torch.equal(seen["batch"].response_mask, full_mask * (~truncated).long().unsqueeze(1))
    expected = (seen["rollout_advantage"].flatten() + 0.5 * penalty).unsqueeze(1) * full_mask
    assert torch.allclose(seen["token_advantage"], expected, atol=1e-6)
    metrics = seen["metrics"]
    assert metrics["overlong/penalty_mean"] == pytest.approx(float(penalty.mean()), abs=1e-6)
    assert metrics["overlong/penalised_frac"] == pytest.approx(float((penalty < 0).float().mean()))
