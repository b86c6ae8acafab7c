"""The collapse sweep's regime statistics by hand, and its settings as valid runs of the paths scale."""

from __future__ import annotations

import pytest

from asymrl import sweep
from asymrl.config import build_config


def test_regime_statistics_by_hand():
    records = [{"step": 0, "val/accuracy": 0.40}]
    for step in range(1, 101):
        records.append({"step": step, "entropy/all": 0.3 if step <= 10 else (0.06 if step > 90 else 0.15), "reward/accuracy": step / 200,
                        "diversity/distinct_correct": 2.0 if step <= 10 else 1.5, "groups/all_solved_frac": step / 100,
                        "groups/none_solved_frac": 0.5,
                        **({"val/accuracy": [0.40, 0.50, 0.56, 0.60, 0.61, 0.60, 0.62, 0.61, 0.60, 0.615, 0.612][step // 10]}
                           if step % 10 == 0 else {})})
    stats = sweep.regime_statistics(records)
    assert stats["steps"] == 100
    assert stats["entropy_first"] == pytest.approx(0.3) and stats["entropy_last"] == pytest.approx(0.06)
    assert stats["entropy_drop"] == pytest.approx(0.8)                      # a collapse: >= 60%
    assert (stats["distinct_correct_first"], stats["distinct_correct_last"]) == (pytest.approx(2.0), pytest.approx(1.5))
    assert stats["all_solved_first"] == pytest.approx(0.055) and stats["all_solved_last"] == pytest.approx(0.955)
    # distinct correct over the correct answers of a solved group, 8 x accuracy / (1 - 0.5): 2 / (16 s / 200) at step s
    assert stats["distinct_per_correct_first"] == pytest.approx(sum(25 / s for s in range(1, 11)) / 10)
    assert stats["distinct_per_correct_last"] == pytest.approx(sum(1.5 * 200 / (16 * s) for s in range(91, 101)) / 10)
    assert (stats["val_base"], stats["val_peak"], stats["val_peak_step"], stats["val_final"]) == (0.40, 0.62, 60, 0.612)
    # the plateau: from the first validation at or after 60% of the run (step 60) to the last
    assert stats["val_late_gain"] == pytest.approx(0.612 - 0.62)


@pytest.mark.parametrize("setting", list(sweep.SETTINGS))
def test_every_setting_is_grpo_on_the_paths_scale_with_its_knobs(setting, tmp_path):
    config = build_config(sweep.run_values(setting, 0, tmp_path))
    assert config.algorithm.estimator == "grpo" and config.data.task == "paths" and config.train.save_final
    assert config.train.total_steps == sweep.SETTINGS[setting].get("train.total_steps", sweep.COMMON["train.total_steps"])
    for key, value in sweep.SETTINGS[setting].items():
        section, name = key.split(".")
        assert getattr(getattr(config, section), name) == value


def test_power_by_hand():
    p = sweep.power([50.0, 52.0, 54.0, 56.0])                 # sd = sqrt(20 / 3)
    assert p["sd"] == pytest.approx((20 / 3) ** 0.5) and p["se_difference"] == pytest.approx(p["sd"] * (2 / 4) ** 0.5)
    assert p["seeds_for_target"] == 21                        # ceil(2 x (2.582 / 0.8)^2) = ceil(20.83)
