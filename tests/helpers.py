"""Helpers shared by several test files (no test file imports another): the small toy run the
trainer tests use, run as a ``train.py`` process or as one step in this process, a finished
reproduction run's folder, TensorBoard's view of a logged scalar, the lines a matplotlib figure
plots, and what tests/conftest.py needs (the shared data's folder, the registries)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SMALL_RUN = [
    "model.path=toy:tiny", "data.train=toy", "data.validation=toy", "data.prompt_template={problem}", "eval.max_problems=48",
    "rollout.backend=transformers", "rollout.max_new_tokens=48", "rollout.group_size=4",
    "train.prompts_per_step=8", "train.mini_batch_prompts=4", "train.micro_batch_size=8", "train.lr=5e-5", "train.seed=3",
    "eval.every_steps=3", "eval.sampled_n=2", "log.progress_bar=false",
]


def run_train(output_dir: Path, *extra: str, launch: list[str] | None = None, wait: bool = True, env: dict | None = None,
              script: list[str] | None = None):
    """``train.py`` (or ``script``: a command line standing for it) with ``SMALL_RUN`` and ``extra``
    overrides in a child process; with ``wait`` its ``summary.json`` (the process must succeed), else
    the running process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "DS_ACCELERATOR": "cpu", **(env or {})}
    env.setdefault("TORCH_EXTENSIONS_DIR", str(ROOT / ".cache" / "torch_extensions"))
    command = (launch or [sys.executable]) + (script or [str(ROOT / "train.py")]) + [*SMALL_RUN, f"train.output_dir={output_dir}", *extra]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not wait:
        return process
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-4000:]
    return json.loads((output_dir / "summary.json").read_text())


def one_step_in_process(tmp_path: Path, monkeypatch, *extra: str) -> dict:
    """One trainer step in this process; returns its metrics and what the update received."""
    from asymrl import trainer as trainer_module
    from asymrl.config import parse_args

    config = parse_args([*SMALL_RUN, "train.prompts_per_step=4", "train.mini_batch_prompts=4", "rollout.max_new_tokens=24",
                         "log.trackers=[]", "eval.at_start=false", f"train.output_dir={tmp_path}", *extra])
    trainer = trainer_module.Trainer(config)
    seen: dict = {}
    compute, generate, update = trainer_module.estimators.compute, trainer.engine.generate, trainer.updater.update
    logprobs = trainer.updater.logprobs

    def recording_compute(*args, **kwargs):
        seen["rollout_advantage"] = compute(*args, **kwargs)
        return seen["rollout_advantage"]

    def recording_generate(prompts, params):
        seen["groups"] = generate(prompts, params)
        return seen["groups"]

    def recording_update(batch, token_advantage, old_logprobs, *args, **kwargs):
        seen.update(batch=batch, token_advantage=token_advantage, old_logprobs=old_logprobs)
        return update(batch, token_advantage, old_logprobs, *args, **kwargs)

    def recording_logprobs(batch, policy=None, first_row=0):
        result = logprobs(batch, policy, first_row)
        seen.setdefault("old_entropy", result[1])  # the first pass: the old policy's
        seen.setdefault("first_row", first_row)
        return result

    monkeypatch.setattr(trainer.updater, "logprobs", recording_logprobs)
    monkeypatch.setattr(trainer_module.estimators, "compute", recording_compute)
    monkeypatch.setattr(trainer.engine, "generate", recording_generate)
    monkeypatch.setattr(trainer.updater, "update", recording_update)
    try:
        seen["metrics"] = trainer.step(0, trainer.sampler.next_batch())
        seen["sampler_state"] = trainer.sampler.state_dict()
        seen["attn_implementation"] = trainer.updater.model.config._attn_implementation
    finally:
        trainer.reward.close()
        trainer.engine.close()
    return seen


def tensorboard_scalars(logdir, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a scalar as TensorBoard shows it (events purged by a restart left out)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


_REGISTRY_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*\s*(?::[^=\n]+)?=\s*Registry\(", re.MULTILINE)


def registry_modules() -> list[str]:
    """The asymrl modules that define a module-level ``Registry`` (found in the source, so that a
    registry added later is covered without a change here)."""
    source = ROOT / "src" / "asymrl"
    names = []
    for path in sorted(source.rglob("*.py")):
        if _REGISTRY_ASSIGNMENT.search(path.read_text()):
            parts = path.relative_to(source.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def live_registries() -> list:
    """Every ``Registry`` instance held at module level by an imported asymrl module."""
    from asymrl.registry import Registry

    found = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "asymrl" or name.startswith("asymrl.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Registry):
                found[id(value)] = value
    return list(found.values())


def plotted(axis) -> dict:
    """Label -> (x values, y values) of each labelled line of a matplotlib axis."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axis.get_lines()
            if not line.get_label().startswith("_")}


def record_figures(monkeypatch) -> dict:
    """The figures asymrl.plots builds for the Table 1 style pages while the test runs (name ->
    matplotlib figure: ``table1_figures``' names, and ``pass_at_k``), recorded as they are built, for
    reading their data back after they were written."""
    from asymrl import plots

    built: dict = {}
    table1_figures, pass_at_k_figure = plots.table1_figures, plots.pass_at_k_figure

    def recording_table1_figures(*args, **kwargs):
        figures = table1_figures(*args, **kwargs)
        built.update(figures)
        return figures

    def recording_pass_at_k_figure(*args, **kwargs):
        built["pass_at_k"] = pass_at_k_figure(*args, **kwargs)
        return built["pass_at_k"]

    monkeypatch.setattr(plots, "table1_figures", recording_table1_figures)
    monkeypatch.setattr(plots, "pass_at_k_figure", recording_pass_at_k_figure)
    return built


# A fixed batch of rollouts of a seeded tiny Llama (tests/update_worker.py, tests/test_update_modes.py).
ROWS, LENGTH, VOCAB = 8, 14, 50


def fixed_rollouts():
    """Rows of 7-14 tokens (4 of prompt), their response mask and a random advantage per row."""
    import torch

    from asymrl.update import RolloutBatch

    generator = torch.Generator().manual_seed(123)
    input_ids = torch.randint(3, VOCAB, (ROWS, LENGTH), generator=generator)
    lengths = torch.randint(7, LENGTH + 1, (ROWS,), generator=generator)
    positions = torch.arange(LENGTH)[None]
    attention_mask = (positions < lengths[:, None]).long()
    prompt_length = 4
    response_mask = attention_mask * (positions >= prompt_length).long()
    advantages = torch.randn(ROWS, 1, generator=generator) * response_mask
    return RolloutBatch(input_ids * attention_mask, attention_mask, response_mask), advantages


def fake_finished_run(directory: Path, steps: int = 100) -> None:
    """A run folder as a finished paths-scale run leaves it (metrics, summary, evaluations), without training."""
    directory.mkdir(parents=True)
    records = [{"step": 0, "val/accuracy": 0.4}]
    for step in range(1, steps + 1):
        records.append({"step": step, "entropy/all": 0.3 - 0.002 * step, "groups/none_solved_frac": 0.2, "groups/all_solved_frac": 0.01 * step / 10,
                        "reward/accuracy": 0.3 + 0.003 * step, "cov/p=0.500": 0.1, "time/step": 0.4,
                        "actor/pg_loss": 0.5, **({"val/accuracy": 0.4 + step / 1000} if step % 50 == 0 else {}),
                        **({"logp_increment/correct": 0.01} if step % 10 == 1 else {})})  # every 10 steps, as the trainer logs it
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (directory / "summary.json").write_text(json.dumps({"steps": steps, "total_steps": steps, "wall_s": 12.5, "best_val_accuracy": 0.5,
                                                        "best_step": 100, "run_dir": str(directory)}))
    for folder, n, first in (("eval", 2, 0.3), ("eval_wide", 64, 0.3), ("eval_final", 2, 0.25)):
        (directory / folder).mkdir()
        (directory / folder / "summary.json").write_text(json.dumps({"data": "paths:test", "n": n, "pass_at_k": {"1": first, "2": 0.45}}))
