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
    with pytest.raises(ConfigError, match="algorithm.rollout_correction_cap: must be > 1"):
        build_config({"algorithm.rollout_correction": "tis", "algorithm.rollout_correction_cap": 1.0})
    with pytest.raises(ConfigError, match="algorithm.rollout_correction: 'clip' is not allowed; choose one of none, tis, mask"):
        build_config({"algorithm.rollout_correction": "clip"})
    with pytest.raises(ConfigError, match="rollout.engine_dtype: 'fp8' is not allowed"):
        build_config({"rollout.engine_dtype": "fp8"})
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


def test_a_moved_key_names_its_new_place():
    with pytest.raises(ConfigError, match=r"data.validation_size: moved to eval.max_problems"):
        build_config({"data.validation_size": 10})


def test_policy_loss_and_its_kwargs_are_checked():
    from asymrl.loss import POLICY_LOSSES

    assert build_config({}).algorithm.policy_loss == "ppo"
    with pytest.raises(ConfigError, match=r"algorithm.policy_loss: 'ppoo' is not registered; choose one of .*ppo"):
        build_config({"algorithm.policy_loss": "ppoo"})
    with pytest.raises(ConfigError, match=r"algorithm.policy_loss_kwargs.scale: policy loss 'ppo' has no parameter 'scale'"):
        build_config({"algorithm.policy_loss_kwargs.scale": 2})

    @POLICY_LOSSES.register("test_needs_scale")
    def needs_scale(logprobs, old_logprobs, advantages, mask, *, eps_low, eps_high, dual_clip, scale: float, power: int = 1):
        return -advantages * logprobs * scale ** power, {}

    # (tests/conftest.py restores every registry after each test)
    config = build_config({"algorithm.policy_loss": "test_needs_scale", "algorithm.policy_loss_kwargs.scale": "0.5"})
    assert config.algorithm.policy_loss_kwargs == {"scale": 0.5}
    with pytest.raises(ConfigError, match=r"policy_loss_kwargs.scale: policy loss 'test_needs_scale' needs it"):
        build_config({"algorithm.policy_loss": "test_needs_scale"})
    with pytest.raises(ConfigError, match=r"policy_loss_kwargs.power: expected an integer"):
        build_config({"algorithm.policy_loss": "test_needs_scale", "algorithm.policy_loss_kwargs": {"scale": 1, "power": 1.5}})


@pytest.fixture
def half_reinforce():
    """README's user estimator, registered from outside the package for one test."""
    import torch

    from asymrl import advantages

    name = "test_half_reinforce"

    @advantages.register(name)
    def half_reinforce(rewards: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
        return (rewards * 2 - 1) * scale

    return name


def test_estimator_kwargs_reach_a_registered_estimator_from_yaml_and_key_value(half_reinforce, tmp_path):
    import torch

    from asymrl import advantages

    path = tmp_path / "run.yaml"
    path.write_text(f"algorithm:\n  estimator: {half_reinforce}\n  estimator_kwargs: {{scale: 0.25}}\n")
    from_yaml = parse_args(["--config", str(path)])
    assert from_yaml.algorithm.estimator_params() == {"scale": 0.25}
    rewards = torch.tensor([[1.0, 0.0]])
    advantage = advantages.compute(half_reinforce, rewards, **from_yaml.algorithm.estimator_params())
    assert advantage.tolist() == [[0.25, -0.25]]
    # key=value overrides the YAML's entry, converted by the parameter's annotation (float).
    from_command_line = parse_args(["--config", str(path), "algorithm.estimator_kwargs.scale=3"])
    assert from_command_line.algorithm.estimator_kwargs == {"scale": 3.0} and isinstance(from_command_line.algorithm.estimator_kwargs["scale"], float)
    assert parse_args([f"algorithm.estimator={half_reinforce}", "algorithm.estimator_kwargs={scale: 2}"]).algorithm.estimator_params() == {"scale": 2.0}
    from_command_line.save(tmp_path / "config.yaml")
    assert parse_args(["--config", str(tmp_path / "config.yaml")]) == from_command_line


def test_estimator_kwargs_errors_name_the_key(half_reinforce):
    with pytest.raises(ConfigError) as error:
        build_config({"algorithm.estimator": half_reinforce, "algorithm.estimator_kwargs.scal": 1})
    assert (f"algorithm.estimator_kwargs.scal: advantage estimator '{half_reinforce}' has no parameter 'scal'; it takes scale; "
            "did you mean 'scale'?") in str(error.value)
    with pytest.raises(ConfigError, match="algorithm.estimator_kwargs.alpha_pos: expected float, got 'abc'"):
        build_config({"algorithm.estimator": "asymgrpo", "algorithm.estimator_kwargs.alpha_pos": "abc"})
    with pytest.raises(ConfigError, match="algorithm.estimator_kwargs.k: expected an integer, got '2.5'"):
        build_config({"algorithm.estimator": "passk", "algorithm.estimator_kwargs.k": "2.5"})
    with pytest.raises(ConfigError, match="algorithm.estimator_kwargs: expected a mapping"):
        build_config({"algorithm.estimator_kwargs": "0.5"})
    # A legacy key set for an estimator that does not take it, or disagreeing with estimator_kwargs.
    with pytest.raises(ConfigError, match=f"algorithm.alpha_pos: is the 'alpha_pos' of asymgrpo, pos_only, not a parameter of estimator '{half_reinforce}'"):
        build_config({"algorithm.estimator": half_reinforce, "algorithm.alpha_pos": 0.5})
    with pytest.raises(ConfigError, match="algorithm.alpha_pos = 0.9 and algorithm.estimator_kwargs.alpha_pos = 0.5 disagree"):
        build_config({"algorithm.alpha_pos": 0.9, "algorithm.estimator_kwargs.alpha_pos": 0.5})
    assert build_config({"algorithm.alpha_pos": 0.9, "algorithm.estimator_kwargs.alpha_pos": "0.9"}).algorithm.estimator_params() == {"alpha_pos": 0.9}
    with pytest.raises(ConfigError, match="algorithm.estimator_kwargs.k: must be in \\[1, G=8\\], got 9"):
        build_config({"algorithm.estimator": "passk", "algorithm.estimator_kwargs.k": 9})


def test_an_estimator_parameter_without_default_must_be_given():
    import torch

    from asymrl import advantages

    @advantages.register("test_scaled_reinforce")
    def scaled_reinforce(rewards: torch.Tensor, scale: float) -> torch.Tensor:
        return (rewards * 2 - 1) * scale

    with pytest.raises(ConfigError, match="algorithm.estimator_kwargs.scale: advantage estimator 'test_scaled_reinforce' needs it"):
        build_config({"algorithm.estimator": "test_scaled_reinforce"})
    config = build_config({"algorithm.estimator": "test_scaled_reinforce", "algorithm.estimator_kwargs.scale": "2"})
    assert config.algorithm.estimator_params() == {"scale": 2.0}


def test_grpo_eps_is_grpos_only():
    assert build_config({"algorithm.estimator": "grpo", "algorithm.grpo_eps": 1e-6}).algorithm.estimator_params() == {"eps": 1e-6}
    with pytest.raises(ConfigError, match="algorithm.grpo_eps: is the 'eps' of grpo, not a parameter of estimator 'passk'; "
                                          "set algorithm.estimator_kwargs.eps"):
        build_config({"algorithm.estimator": "passk", "algorithm.grpo_eps": 1e-3})
    assert build_config({"algorithm.estimator": "passk", "algorithm.estimator_kwargs.eps": 1e-3}).algorithm.estimator_params() == {"eps": 1e-3}
    with pytest.raises(ConfigError, match="algorithm.passk_k: is the 'k' of passk, not a parameter of estimator 'reinforce' "
                                          "\\(it takes no parameters\\)"):
        build_config({"algorithm.estimator": "reinforce", "algorithm.passk_k": 2})


@pytest.mark.parametrize("estimator,legacy,params", [
    ("asymgrpo", {"alpha_pos": 0.65, "alpha_neg": 0.3}, {"alpha_pos": 0.65, "alpha_neg": 0.3}),
    ("pos_only", {"alpha_pos": 0.7}, {"alpha_pos": 0.7}),
    ("neg_only", {"alpha_neg": 0.2}, {"alpha_neg": 0.2}),
    ("grpo", {"grpo_std": "sample", "grpo_eps": 1e-6}, {"std": "sample", "eps": 1e-6}),
    ("passk", {"passk_k": 2}, {"k": 2}),
    ("ent_increase", {"flip_alpha": 0.3}, {"alpha": 0.3}),
    ("ent_decrease", {"flip_alpha": 0.3}, {"alpha": 0.3}),
])
def test_legacy_keys_give_the_same_advantages(estimator, legacy, params):
    import torch

    from asymrl import advantages

    rewards = (torch.arange(8)[None, :] < torch.arange(9)[:, None]).double()  # every k = 0..8 of G = 8
    by_legacy = build_config({"algorithm.estimator": estimator, **{f"algorithm.{k}": v for k, v in legacy.items()}})
    by_kwargs = build_config({"algorithm.estimator": estimator, **{f"algorithm.estimator_kwargs.{k}": v for k, v in params.items()}})
    assert by_legacy.algorithm.estimator_params() == params == by_kwargs.algorithm.estimator_params()
    expected = advantages.compute(estimator, rewards, **params)
    assert not torch.equal(expected, advantages.compute(estimator, rewards))  # the parameters matter
    assert torch.equal(advantages.compute(estimator, rewards, **by_legacy.algorithm.estimator_params()), expected)


def test_inherit_lays_a_file_over_another(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  lr: 1.0e-5\n  seed: 3\nalgorithm:\n  estimator_kwargs: {alpha_pos: 0.5}\n")
    (tmp_path / "row.yaml").write_text("inherit: base.yaml\ntrain:\n  seed: 4\nalgorithm:\n  estimator_kwargs: {alpha_neg: 0.1}\n")
    config = parse_args(["--config", str(tmp_path / "row.yaml")])
    assert (config.train.lr, config.train.seed) == (1e-5, 4)
    assert config.algorithm.estimator_kwargs == {"alpha_pos": 0.5, "alpha_neg": 0.1}   # merged entry by entry
    (tmp_path / "orphan.yaml").write_text("inherit: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="orphan.yaml: inherit: .*nowhere.yaml does not exist"):
        load_yaml(tmp_path / "orphan.yaml")
    (tmp_path / "a.yaml").write_text("inherit: b.yaml\n")
    (tmp_path / "b.yaml").write_text("inherit: a.yaml\n")
    with pytest.raises(ConfigError, match="b.yaml: inherit: cycle .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load_yaml(tmp_path / "a.yaml")


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


def tripled_sign(rewards, scale: float = 3.0):
    """An estimator never registered: chosen as test_config:tripled_sign."""
    return (rewards * 2 - 1) * scale


def test_an_importable_estimator_is_chosen_by_reference():
    import torch

    from asymrl import advantages

    config = build_config({"algorithm.estimator": "test_config:tripled_sign", "algorithm.estimator_kwargs.scale": "0.5"})
    assert config.algorithm.estimator_params() == {"scale": 0.5}
    rewards = torch.tensor([[1.0, 0.0]])
    assert advantages.compute(config.algorithm.estimator, rewards, **config.algorithm.estimator_params()).tolist() == [[0.5, -0.5]]
    with pytest.raises(ConfigError, match="algorithm.estimator_kwargs.alpha: advantage estimator 'test_config:tripled_sign' has no parameter 'alpha'"):
        build_config({"algorithm.estimator": "test_config:tripled_sign", "algorithm.estimator_kwargs.alpha": "1"})
    with pytest.raises(ConfigError, match="algorithm.estimator: cannot import advantage estimator 'no_such_module:fn': ModuleNotFoundError"):
        build_config({"algorithm.estimator": "no_such_module:fn"})
    with pytest.raises(ConfigError, match="algorithm.policy_loss: cannot import policy loss 'test_config:missing': AttributeError"):
        build_config({"algorithm.policy_loss": "test_config:missing"})
