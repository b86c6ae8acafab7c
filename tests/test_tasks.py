"""Tasks as units: a data name brings its reward, prompt, lengths and base policy; an explicit
setting wins; a run's config.yaml records what was used; a missing file is a missing file."""

from __future__ import annotations

import json

import pytest

from asymrl import tasks
from asymrl.config import ConfigError, build_config, load_yaml
from asymrl.data import DataError, load_problems


def test_the_built_in_tasks():
    assert {"math", "toy", "paths"} <= set(tasks.available())
    paths, toy, math = tasks.get("paths"), tasks.get("toy"), tasks.get("math")
    assert (paths.reward, paths.prompt_template, paths.max_new_tokens, paths.base_policy) == ("paths", "{problem}", 32, "toy:paths")
    assert (toy.reward, toy.prompt_template, toy.max_new_tokens, toy.base_policy) == ("math", "{problem}", 64, "toy:tiny")
    assert (math.reward, math.prompt_template, math.base_policy, math.files) == ("math", tasks.MATH_PROMPT, None, None)
    # A data name: a task's split, or a dataset of the math task.
    assert tasks.parse_data_name("paths:test") == (paths, "test") and tasks.parse_data_name("toy") == (toy, None)
    assert tasks.parse_data_name("math500") == (None, None) and tasks.parse_data_name("math") == (None, None)
    assert tasks.task_of("some/file.jsonl") is math and tasks.task_of("some/file.jsonl", "paths") is paths


def test_data_train_paths_alone_brings_its_reward_template_lengths_and_policy():
    config = build_config({"data.train": "paths"})
    assert (config.data.task, config.reward.name, config.data.prompt_template) == ("paths", "paths", "{problem}")
    assert (config.rollout.max_new_tokens, config.data.max_prompt_tokens, config.model.path) == (32, 32, "toy:paths")
    assert (config.data.validation, config.data.validation_split) == ("paths", "validation")


def test_an_explicit_setting_wins_and_config_yaml_records_what_was_used(tmp_path):
    config = build_config({"data.train": "paths", "rollout.max_new_tokens": 27, "data.prompt_template": "P {problem}",
                           "reward.name": "reward_functions:constant", "reward.kwargs.value": 0.5})
    assert (config.rollout.max_new_tokens, config.data.prompt_template) == (27, "P {problem}")
    assert config.reward.name == "reward_functions:constant" and config.reward.kwargs == {"value": 0.5}
    config.save(tmp_path / "config.yaml")
    saved = load_yaml(tmp_path / "config.yaml")
    assert (saved["data.task"], saved["reward.name"], saved["rollout.max_new_tokens"]) == ("paths", "reward_functions:constant", 27)
    assert build_config(saved).to_dict() == config.to_dict()  # a saved config rebuilds itself exactly


def test_a_task_for_a_file_of_its_problems(tmp_path):
    problems, _ = load_problems("paths", "validation")
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in problems[:40]))
    config = build_config({"data.task": "paths", "data.train": str(path)})
    assert (config.reward.name, config.model.path, config.data.validation) == ("paths", "toy:paths", "paths")
    # Without data.task a file is a math dataset, and validating it on another task's data is refused.
    with pytest.raises(ConfigError, match=r"data.validation: 'paths' is the paths task's data, but the run's task is math"):
        build_config({"data.train": str(path), "data.validation": "paths", "model.path": "toy:paths"})


def test_what_cannot_fit_a_task_is_refused():
    with pytest.raises(ConfigError, match="data.validation: 'toy' is the toy task's data, but the run's task is paths"):
        build_config({"data.train": "paths", "data.validation": "toy"})
    with pytest.raises(ConfigError, match="model.path: the math task has no base policy of its own"):
        build_config({"data.train": "math_train"})
    with pytest.raises(ConfigError, match=r"data.task: unknown task 'pathz'; did you mean 'paths'\?"):
        build_config({"data.task": "pathz"})


def test_a_missing_file_is_no_such_file(tmp_path):
    with pytest.raises(ConfigError, match=r"data.train: missing.jsonl: no such file"):
        build_config({"data.train": "missing.jsonl", "model.path": "toy:tiny"})
    with pytest.raises(DataError, match=r"missing.parquet: no such file"):
        load_problems(str(tmp_path / "missing.parquet"))


def test_a_registered_task_or_module_name_is_one_definition(tmp_path, monkeypatch):
    """Adding a task: one definition (here registered from a test module) and a config naming it."""
    rows = [{"id": str(i), "problem": f"Echo {i}.", "answer": str(i)} for i in range(40)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    echo = tasks.Task(name="echo", reward="reward_functions:constant", reward_kwargs={"value": 1.0}, prompt_template="{problem}",
                      max_new_tokens=8, max_prompt_tokens=16, base_policy="toy:tiny", validation="echo", validation_split="train",
                      files=lambda: {"train": tmp_path / "train.jsonl"})
    tasks.register(echo)
    try:
        config = build_config({"data.train": "echo"})
        assert (config.reward.name, config.reward.kwargs, config.rollout.max_new_tokens) == ("reward_functions:constant", {"value": 1.0}, 8)
        assert [p["problem"] for p in load_problems("echo")[0][:2]] == ["Echo 0.", "Echo 1."]
        with pytest.raises(DataError, match="the echo task has splits train, not 'test'"):
            load_problems("echo:test")
    finally:
        tasks.TASKS.unregister("echo")
    monkeypatch.setattr(tasks, "ECHO_FOR_TEST", echo, raising=False)
    assert tasks.get("asymrl.tasks:ECHO_FOR_TEST") is echo  # module:name, never registered
