"""The typed config: YAML + key=value, and errors that name the key."""

from __future__ import annotations

import pytest

from asymrl.config import Config, ConfigError, build_config, check_world_size, help_text, load_yaml, parse_args


def test_defaults_are_the_papers():
    config = Config()
    assert config.algorithm.estimator == "asymgrpo" and config.algorithm.estimator_params() == {}  # 0.9 / 0.4
    assert config.train.lr == 2e-6 and config.rollout.group_size == 8 and config.algorithm.eps_low == 0.2
    assert config.algorithm.loss_agg == "token-mean"


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("algorithm:\n  estimator: grpo\n  grpo_std: sample\ntrain:\n  lr: 1.0e-5\n")
    config = parse_args(["--config", str(path), "train.lr=3e-5", "algorithm.eps_high=0.28", "rollout.stop=[a, b]", "eval.at_start=false"])
    assert config.algorithm.estimator == "grpo" and config.algorithm.grpo_std == "sample"
    assert config.train.lr == pytest.approx(3e-5) and isinstance(config.train.lr, float)
    assert config.algorithm.eps_high == 0.28 and config.rollout.stop == ["a", "b"] and config.eval.at_start is False
    assert config.algorithm.estimator_params() == {"std": "sample"}


def test_estimator_params_follow_the_estimator():
    assert build_config({"algorithm.estimator": "asymgrpo", "algorithm.alpha_pos": 0.65}).algorithm.estimator_params() == {"alpha_pos": 0.65}
    assert build_config({"algorithm.estimator": "passk", "algorithm.passk_k": 2}).algorithm.estimator_params() == {"k": 2}
    # Presets keep their own exponent unless one is given (pos_only is GRPO's 1/2, not AsymGRPO's 0.9).
    assert build_config({"algorithm.estimator": "pos_only"}).algorithm.estimator_params() == {}
    assert build_config({"algorithm.estimator": "reinforce"}).algorithm.estimator_params() == {}


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match="unknown key 'algorithm.alpha_poss'; did you mean 'algorithm.alpha_pos'"):
        build_config({"algorithm.alpha_poss": 0.9})


def test_bad_values_name_key_and_allowed_values_all_at_once():
    with pytest.raises(ConfigError) as error:
        build_config({"algorithm.loss_agg": "mean", "train.lr": "fast", "rollout.group_size": 2.5})
    message = str(error.value)
    assert "algorithm.loss_agg: 'mean' is not allowed; choose one of token-mean, seq-mean-token-mean, seq-mean-token-sum-norm" in message
    assert "train.lr: expected float, got 'fast'" in message
    assert "rollout.group_size: expected an integer, got 2.5" in message


def test_cross_field_validation():
    with pytest.raises(ConfigError, match="train.mini_batch_prompts: must divide train.prompts_per_step"):
        build_config({"train.prompts_per_step": 10, "train.mini_batch_prompts": 4})
    with pytest.raises(ConfigError, match="algorithm.estimator: 'grpoo' is not registered"):
        build_config({"algorithm.estimator": "grpoo"})
    with pytest.raises(ConfigError, match="algorithm.passk_k: must be in \\[1, G=8\\]"):
        build_config({"algorithm.estimator": "passk", "algorithm.passk_k": 9})
    with pytest.raises(ConfigError, match="algorithm.eps_low: must be in \\[0, 1\\)"):
        build_config({"algorithm.eps_low": 1.5})
    with pytest.raises(ConfigError, match="must be divisible by the number of processes"):
        check_world_size(build_config({"train.prompts_per_step": 6, "train.mini_batch_prompts": 6}), 4)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train:\n  lr: 1e-5\n  seed: [1, 2\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+:\d+: invalid YAML"):
        load_yaml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")


def test_save_round_trip(tmp_path):
    config = build_config({"algorithm.estimator": "neg_only", "train.seed": 7})
    config.save(tmp_path / "config.yaml")
    again = parse_args(["--config", str(tmp_path / "config.yaml")])
    assert again == config


def test_help_lists_every_key():
    text = help_text()
    for key in ("algorithm.alpha_pos", "train.mini_batch_prompts", "rollout.group_size", "log.covariance_steps"):
        assert key in text


def test_engine_sections_nest_in_yaml_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("rollout:\n  backend: vllm\n  group_size: 4\n  vllm:\n    gpu_memory_utilization: 0.7\n    sleep_mode: true\n")
    config = parse_args(["--config", str(path), "rollout.transformers.static_cache=true", "rollout.transformers.max_batch_rows=32"])
    options = config.rollout.engine_options
    assert config.rollout.backend == "vllm" and config.rollout.group_size == 4
    assert options["vllm"].gpu_memory_utilization == 0.7 and options["vllm"].sleep_mode is True
    assert options["transformers"].static_cache is True and options["transformers"].max_batch_rows == 32
    tree = config.to_dict()["rollout"]
    assert tree["vllm"] == {"gpu_memory_utilization": 0.7, "sleep_mode": True} and "engine_options" not in tree
    config.save(tmp_path / "saved.yaml")
    assert parse_args(["--config", str(tmp_path / "saved.yaml")]) == config
    text = help_text()
    assert "rollout.vllm.sleep_mode = False" in text and "rollout.transformers.static_cache = False" in text


def test_engine_options_errors_name_the_full_key():
    with pytest.raises(ConfigError) as error:
        build_config({"rollout.vllm.gpu_memory_utilization": "most", "rollout.vllm.sleep_modes": True})
    message = str(error.value)
    assert "rollout.vllm.gpu_memory_utilization: expected float, got 'most'" in message
    assert "unknown key 'rollout.vllm.sleep_modes'; did you mean 'rollout.vllm.sleep_mode'?" in message


def test_moved_keys_name_their_new_place(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("rollout:\n  gpu_memory_utilization: 0.5\n  sleep_mode: true\n")
    with pytest.raises(ConfigError) as error:
        parse_args(["--config", str(path), "rollout.static_cache=true"])
    message = str(error.value)
    assert "rollout.gpu_memory_utilization: moved to rollout.vllm.gpu_memory_utilization" in message
    assert "rollout.sleep_mode: moved to rollout.vllm.sleep_mode" in message
    assert "rollout.static_cache: moved to rollout.transformers.static_cache" in message


def test_backend_is_checked_against_the_registry():
    assert build_config({"rollout.backend": "transformers"}).rollout.backend == "transformers"
    with pytest.raises(ConfigError, match="rollout.backend: 'vlm' is not registered; choose one of auto, transformers, vllm"):
        build_config({"rollout.backend": "vlm"})
