"""Evaluation of a policy through the rollout engine and the reward: Avg@k on benchmarks, or the
pass@k curve of one dataset.

    python -m asymrl.evaluate --checkpoint runs/asymgrpo/best            # the run's prompt and reward, the paper's five benchmarks
    python -m asymrl.evaluate --checkpoint toy:paths --data paths --split validation --n 64 --limit 200 --out DIR

Every dataset is evaluated as its task says (``asymrl.tasks``): ``--data paths`` is scored by the
``paths`` reward with the bare ``{problem}`` template and 32-token answers, ``math500`` by the
verifier with the Qwen-math prompt. ``--checkpoint`` is a model directory or ``toy:<preset>``; a
run's checkpoint (a folder with the run's ``config.yaml`` in it or up to three levels above, such
as ``<run>/best``) is evaluated with the prompt template, chat settings, answer length and reward
that run trained with, on datasets of its task. A flag (``--prompt-template``, ``--reward``,
``--max-new-tokens``, ...) overrides either. Prompts that with their answers do not fit the model's
positions are an error naming the template. The printed line and ``summary.json`` name the task,
reward and prompt used.

pass@k (``--data``): n samples per problem, ``DIR/summary.json`` holds ``pass_at_k`` (k = 1, 2, 4,
..., n; the unbiased estimator of Chen et al. 2021, ``asymrl.pass_at_k``), ``pass_at_1_sampling_se`` (the
standard error of pass@1 from sampling the responses, the problems held fixed: the evaluation's own
noise in a comparison of two policies on the same problems) and ``groups`` (the
fractions of mixed, none-solved and all-solved groups over the first 8 samples of each problem, the
groups GRPO would train on at G = 8, and the mean number of distinct correct responses in those of
them with a correct one), ``DIR/samples.jsonl`` one line per problem (id, ``correct``: the
n samples' rewards).

Avg@k (the paper's evaluation, Gu et al. 2026 appendix C): k samples per problem at temperature
0.4, top-p 1.0; k = 5 for MATH-500 and OlympiadBench, 10 for AIME24, AIME25 and AMC23. The score of
a benchmark is the mean over problems of each problem's fraction of correct samples; its standard
error is taken over problems. Writes ``<out>/<benchmark>.jsonl`` (per problem: responses, extracted
answers, rewards) and ``<out>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from asymrl import tasks
from asymrl.config import ConfigError, RewardConfig, build_config, load_yaml, parse_override, reward_from_cli
from asymrl.data import DataError, load_problems
from asymrl.prompts import context_overflow, render_prompt
from asymrl.reward import build_reward, extract_answer
from asymrl.rollout import SamplingParams, VLLMOptions, build_engine
from asymrl.rollout import choices as backend_choices
from asymrl.metrics import distinct_correct, group_outcomes
from asymrl.pass_at_k import pass_at_1_sampling_se, pass_at_k_curve
from asymrl.table1 import AVG_AT_K, mean_and_std
from asymrl.toy.build import model_context, resolve_model_dir


@dataclass
class EvalConfig:
    """Every knob of an evaluation run (the CLI fills it). A setting left at None is the dataset's
    task's (``asymrl.tasks``), or the run's when ``run`` (the flat ``config.yaml`` of the run whose
    checkpoint this is) trained on that task: ``settings_for``."""

    checkpoint: str
    benchmarks: list[str]
    out: Path
    samples: dict[str, int] = field(default_factory=dict)  # Avg@k per benchmark; default AVG_AT_K or 4
    temperature: float = 0.4
    top_p: float = 1.0
    max_new_tokens: int | None = None
    backend: str = "auto"
    dtype: str = "auto"  # the checkpoint's own
    device: str = "auto"
    local_dir: str | None = None
    prompt_template: str | None = None
    use_chat_template: bool | None = None
    enable_thinking: bool | None = None
    limit: int | None = None
    seed: int = 0
    # pass@k mode (``evaluate_pass_at_k``): one dataset, n samples per problem.
    data: str | None = None
    split: str | None = None
    n: int = 64
    reward: str | None = None  # a registered reward or module:function
    reward_kwargs: dict = field(default_factory=dict)
    reward_timeout_s: float = RewardConfig.timeout_s
    run: dict | None = None  # the run's config (flat dotted keys), found beside or above the checkpoint
    run_config_path: Path | None = None
    # Engine name -> its options. Evaluation has the GPU to itself, so vLLM may take most of it.
    engine_options: dict = field(default_factory=lambda: {"vllm": VLLMOptions(gpu_memory_utilization=0.85)})


@dataclass
class TaskSettings:
    """What one dataset is evaluated with: its task's prompt, answer length and reward."""

    task: str
    prompt_template: str
    use_chat_template: bool
    enable_thinking: bool | None
    max_new_tokens: int
    reward: RewardConfig

    def describe(self) -> dict:
        return {"task": self.task, "reward": self.reward.name, "reward_kwargs": self.reward.kwargs,
                "prompt_template": self.prompt_template, "use_chat_template": self.use_chat_template,
                "enable_thinking": self.enable_thinking, "max_new_tokens": self.max_new_tokens}


def find_run_config(checkpoint: str) -> Path | None:
    """The ``config.yaml`` of the run a checkpoint folder belongs to: in the folder or one of its
    three nearest parents (``<run>/best``, ``<run>/checkpoints/step_N/...``); None for a bare model."""
    folder = Path(checkpoint)
    if not folder.is_dir():
        return None
    for candidate in [folder, *folder.resolve().parents][:4]:
        if (candidate / "config.yaml").is_file():
            return candidate / "config.yaml"
    return None


def _run_task(run: dict) -> str:
    """The task a run trained on (runs from before ``data.task`` existed: the task of data.train)."""
    return run.get("data.task") or tasks.task_of(run["data.train"]).name


def settings_for(dataset: str, config: EvalConfig) -> TaskSettings:
    """How ``dataset`` is evaluated: a flag given on the command line, else the run's setting when the
    run trained on the dataset's task, else the task's. The dataset's task is the one its name
    names (``paths:test``), else the run's task, else math."""
    run = config.run
    named, _ = tasks.parse_data_name(dataset)
    task = named or (tasks.get(_run_task(run)) if run else tasks.get("math"))
    chosen = {"prompt_template": task.prompt_template, "use_chat_template": task.use_chat_template, "enable_thinking": None,
              "max_new_tokens": task.max_new_tokens, "reward": task.reward, "reward_kwargs": dict(task.reward_kwargs)}
    if run is not None and _run_task(run) == task.name:
        chosen.update(prompt_template=run["data.prompt_template"], use_chat_template=run["data.use_chat_template"],
                      enable_thinking=run.get("data.enable_thinking"), reward=run["reward.name"],
                      max_new_tokens=run.get("rollout.val_max_new_tokens") or run["rollout.max_new_tokens"],
                      reward_kwargs={key.removeprefix("reward.kwargs."): value for key, value in run.items()
                                     if key.startswith("reward.kwargs.")})
    if config.reward is not None and config.reward != chosen["reward"]:
        chosen["reward_kwargs"] = {}  # another reward: the task's or run's kwargs are not its
    for name in ("prompt_template", "use_chat_template", "enable_thinking", "max_new_tokens", "reward"):
        if getattr(config, name) is not None:
            chosen[name] = getattr(config, name)
    chosen["reward_kwargs"].update(config.reward_kwargs)
    reward = build_config({"reward.name": chosen.pop("reward"), "reward.timeout_s": config.reward_timeout_s,
                           **{f"reward.kwargs.{key}": value for key, value in chosen.pop("reward_kwargs").items()}}).reward
    return TaskSettings(task=task.name, reward=reward, **chosen)


@dataclass
class Dataset:
    """One dataset to evaluate: its problems, their rendered prompts and how they are scored."""

    name: str
    problems: list[dict]
    prompts: list[str]
    settings: TaskSettings
    longest_prompt: int


def prepare(name: str, split: str | None, config: EvalConfig, tokenizer, context: int | None) -> Dataset:
    """Load ``name`` (its first ``config.limit`` problems), render its prompts, and check that they
    and their answers fit the model's ``context``: past it the scores would mean nothing, so that is
    an error naming the template, never a warning."""
    settings = settings_for(name, config)
    problems, _ = load_problems(name, split, local_dir=config.local_dir)
    problems = problems[: config.limit] if config.limit else problems
    prompts = [render_prompt(p["problem"], tokenizer, settings.prompt_template, settings.use_chat_template, settings.enable_thinking)
               for p in problems]
    longest = max((len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) for prompt in prompts), default=0)
    overflow = context_overflow(longest, settings.max_new_tokens, context, settings.prompt_template)
    if overflow:
        raise ConfigError(f"{name} (task {settings.task}) on {config.checkpoint}: {overflow}; the task's template is "
                          f"{tasks.get(settings.task).prompt_template!r} (--prompt-template, --max-new-tokens)")
    return Dataset(name, problems, prompts, settings, longest)


def samples_for(benchmark: str, config: EvalConfig) -> int:
    return config.samples.get(benchmark, AVG_AT_K.get(benchmark, 4))


def file_stem(benchmark: str) -> str:
    """A file name for a benchmark name ('toy:test' -> 'toy_test', a JSONL path -> its stem)."""
    if benchmark.endswith((".jsonl", ".json")):
        return Path(benchmark).stem
    return benchmark.replace(":", "_").replace("/", "_")


def mean_and_standard_error(per_problem: list[float]) -> tuple[float, float]:
    """Mean of per-problem accuracies and its standard error over problems."""
    if not per_problem:
        return math.nan, math.nan
    mean, std = mean_and_std(per_problem)
    return mean, math.nan if std is None else std / math.sqrt(len(per_problem))


def sample_and_score(engine, reward, dataset: Dataset, config: EvalConfig, n: int) -> list[tuple[list, list[float]]]:
    """``n`` completions of every problem of ``dataset`` at the configured temperature and their rewards, per problem."""
    params = SamplingParams(n=n, temperature=config.temperature, top_p=config.top_p, max_new_tokens=dataset.settings.max_new_tokens,
                            seed=config.seed, logprobs=False)
    groups = engine.generate(dataset.prompts, params)
    problems = dataset.problems
    verdicts = reward.score([c.text for group in groups for c in group], [p for p, group in zip(problems, groups) for _ in group])
    scored, offset = [], 0
    for group in groups:
        scored.append((group, verdicts[offset : offset + len(group)]))
        offset += len(group)
    return scored


def _prepared(config: EvalConfig, selections: list[tuple[str, str | None]], engine, tokenizer):
    """The datasets, each checked against the model's context, then the engine sized for them."""
    from transformers import AutoTokenizer

    model_dir = resolve_model_dir(config.checkpoint)
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_dir)
    context = model_context(model_dir)
    datasets = [prepare(name, split, config, tokenizer, context) for name, split in selections]
    if config.dtype == "auto":  # recorded in the summary as used
        config.dtype = checkpoint_dtype(model_dir)
    if engine is None:
        engine = build_engine(config.backend, model_dir, config.engine_options, dtype=config.dtype, device=config.device, seed=config.seed,
                              max_model_len=max(d.longest_prompt + d.settings.max_new_tokens for d in datasets))
    return datasets, engine


def _provenance(config: EvalConfig, engine) -> dict:
    """What was evaluated, with what: the checkpoint, the run config read, the engine and its dtype."""
    return {"checkpoint": str(config.checkpoint), "run_config": str(config.run_config_path) if config.run_config_path else None,
            "engine": type(engine).__name__, "dtype": config.dtype}


def checkpoint_dtype(model_dir) -> str:
    """The dtype a checkpoint was saved in (its config's ``dtype`` / ``torch_dtype``; float32 when unstated)."""
    from transformers import AutoConfig

    model_config = AutoConfig.from_pretrained(model_dir)
    dtype = getattr(model_config, "dtype", None) or getattr(model_config, "torch_dtype", None) or "float32"
    return str(dtype).removeprefix("torch.")


GROUP_SIZE = 8  # the groups of the pass@k summary: the first 8 samples, G of the paper
PASS_AT_K_TEMPERATURE = 1.0  # the policy's own distribution, as in training


def evaluate_pass_at_k(config: EvalConfig, engine=None, tokenizer=None) -> dict:
    """pass@k for k = 1, 2, 4, ..., n and the group outcomes at G = 8 of ``config.checkpoint`` on one
    dataset (``config.data`` / ``config.split``, ``config.n`` samples; module docstring); returns (and
    writes) the summary."""
    n = config.n
    owns_engine = engine is None
    (dataset,), engine = _prepared(config, [(config.data, config.split)], engine, tokenizer)
    settings, problems = dataset.settings, dataset.problems
    started = time.time()
    config.out.mkdir(parents=True, exist_ok=True)
    with build_reward(settings.reward) as reward:
        before = reward.counts
        scored = sample_and_score(engine, reward, dataset, config, n)
        failures = {f"reward_{name}": count - before[name] for name, count in reward.counts.items()}
    if owns_engine:
        engine.close()
    with (config.out / "samples.jsonl").open("w") as handle:
        for problem, (_, scores) in zip(problems, scored):
            handle.write(json.dumps({"id": problem["id"], "correct": scores}) + "\n")
    correct = torch.tensor([scores for _, scores in scored], dtype=torch.float32)
    outcomes = group_outcomes(correct[:, :GROUP_SIZE])
    distinct = [distinct_correct([c.text for c in group[:GROUP_SIZE]], [score > 0.5 for score in scores[:GROUP_SIZE]])
                for group, scores in scored]
    solved_distinct = [count for count in distinct if count > 0]
    summary = {
        **_provenance(config, engine),
        "data": config.data, "split": config.split, "problems": len(problems), "n": n,
        **settings.describe(), "temperature": config.temperature, "top_p": config.top_p, "seed": config.seed,
        "pass_at_k": {str(k): value for k, value in pass_at_k_curve(correct).items()},
        "pass_at_1_sampling_se": pass_at_1_sampling_se(correct),
        "groups": {"group_size": min(GROUP_SIZE, n), "mixed": outcomes["groups/mixed_frac"],
                   "none_solved": outcomes["groups/none_solved_frac"], "all_solved": outcomes["groups/all_solved_frac"],
                   # distinct correct responses in a group with a correct one: several solution paths?
                   "distinct_correct": sum(solved_distinct) / len(solved_distinct) if solved_distinct else None},
        "seconds": round(time.time() - started, 1),
        **failures,  # each scored 0
    }
    (config.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"{config.data} (task {settings.task}, reward {settings.reward.name}): "
          + ", ".join(f"pass@{k} {100 * v:.1f}%" for k, v in summary["pass_at_k"].items())
          + (f" (pass@1 ± {100 * summary['pass_at_1_sampling_se']:.2f} from sampling)" if summary["pass_at_1_sampling_se"] is not None else "")
          + f"; groups of {summary['groups']['group_size']}: {100 * summary['groups']['mixed']:.1f}% mixed")
    return summary


def evaluate(config: EvalConfig, engine=None, tokenizer=None) -> dict:
    """Evaluate ``config.checkpoint`` on every benchmark; returns (and writes) the summary."""
    owns_engine = engine is None
    datasets, engine = _prepared(config, [(name, None) for name in config.benchmarks], engine, tokenizer)
    config.out.mkdir(parents=True, exist_ok=True)
    summary = {**_provenance(config, engine), "temperature": config.temperature, "top_p": config.top_p, "benchmarks": {}}
    for dataset in datasets:
        benchmark, settings = dataset.name, dataset.settings
        started = time.time()
        k = samples_for(benchmark, config)
        with build_reward(settings.reward) as reward:
            before = reward.counts
            scored = sample_and_score(engine, reward, dataset, config, k)
            failures = {f"reward_{name}": count - before[name] for name, count in reward.counts.items()}  # each scored 0
        per_problem = []
        with (config.out / f"{file_stem(benchmark)}.jsonl").open("w") as handle:
            for problem, (group, scores) in tqdm(list(zip(dataset.problems, scored)), desc=f"write {benchmark}", leave=False):
                per_problem.append(sum(scores) / len(scores))
                handle.write(json.dumps({
                    "id": problem["id"], "answer": problem["answer"], "accuracy": per_problem[-1],
                    "samples": [{"response": c.text, "extracted": extract_answer(c.text), "reward": s, "correct": s == 1.0,
                                 "finish_reason": c.finish_reason} for c, s in zip(group, scores)],
                }) + "\n")
        mean, error = mean_and_standard_error(per_problem)
        summary["benchmarks"][benchmark] = {
            "avg_at_k": k, "problems": len(dataset.problems), "accuracy": 100 * mean, "standard_error": 100 * error,
            **settings.describe(), "seconds": round(time.time() - started, 1), **failures,
        }
        print(f"{benchmark} (task {settings.task}, reward {settings.reward.name}): Avg@{k} = {100 * mean:.2f} ± {100 * error:.2f} "
              f"over {len(dataset.problems)} problems")
    if owns_engine:
        engine.close()
    (config.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


PAPER_BENCHMARKS = ("math500", "aime24", "aime25", "amc23", "olympiadbench")


def parse_args(argv: list[str] | None = None) -> EvalConfig:
    # Defaults come from EvalConfig (the paper's evaluation settings), written once.
    parser = argparse.ArgumentParser(prog="python -m asymrl.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a transformers model directory (e.g. <run>/best) or toy:<preset>")
    parser.add_argument("--benchmarks", default=None,
                        help="comma-separated names (math500, aime24, aime25, amc23, olympiadbench, toy:validation, a JSONL path, a hub id); "
                             "default: the paper's five, or <task>:test for a run of an embedded task")
    parser.add_argument("--samples", default="", help="Avg@k overrides, e.g. 'math500=5,aime24=10'")
    parser.add_argument("--data", default=None, help="pass@k mode: one dataset (toy, paths, a known name, a JSONL path, a hub id) instead of --benchmarks")
    parser.add_argument("--split", default=None, help="pass@k mode: the dataset's split (e.g. validation)")
    parser.add_argument("--n", type=int, default=EvalConfig.n, help="pass@k mode: samples per problem (pass@k for k = 1, 2, 4, ..., n)")
    parser.add_argument("--out", type=Path, default=None, help="default: <checkpoint>/eval")
    parser.add_argument("--temperature", type=float, default=None,
                        help=f"sampling temperature (default: {EvalConfig.temperature}, the paper's, for Avg@k; {PASS_AT_K_TEMPERATURE} for pass@k)")
    parser.add_argument("--top-p", type=float, default=EvalConfig.top_p)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the run's, else the task's (math 4096, toy 64, paths 32)")
    parser.add_argument("--backend", default=EvalConfig.backend, choices=backend_choices())
    parser.add_argument("--dtype", default=EvalConfig.dtype, help="float32, bfloat16, float16, or auto (the checkpoint's own)")
    parser.add_argument("--device", default=EvalConfig.device)
    parser.add_argument("--local-dir", default=None, help="folder with <benchmark>.jsonl files, used before the hub")
    parser.add_argument("--prompt-template", default=None, help="default: the run's, else the task's")
    parser.add_argument("--chat-template", action=argparse.BooleanOptionalAction, default=None,
                        help="render through the tokenizer's chat template (default: the run's, else the task's: yes)")
    parser.add_argument("--enable-thinking", action=argparse.BooleanOptionalAction, default=None,
                        help="passed to the chat template (Qwen3); default: the run's, else the chat template's own default")
    parser.add_argument("--limit", type=int, default=None, help="first N problems of each benchmark")
    parser.add_argument("--seed", type=int, default=EvalConfig.seed)
    parser.add_argument("--reward", default=None, help="reward: a registered name or module:function (default: the run's, else the task's)")
    parser.add_argument("--reward-kwargs", nargs="*", default=[], metavar="NAME=VALUE", help="keyword arguments of the reward")
    parser.add_argument("--reward-timeout", type=float, default=RewardConfig.timeout_s, help="seconds per case (as reward.timeout_s)")
    args = parser.parse_args(argv)
    try:
        reward_kwargs = dict(parse_override(item) for item in args.reward_kwargs)
        if args.reward is not None or reward_kwargs:  # checked against the reward's signature now, not after sampling
            reward_from_cli(args.reward or "math", args.reward_kwargs, args.reward_timeout)
    except ConfigError as error:
        parser.error(str(error))
    samples = {}
    for item in filter(None, args.samples.split(",")):
        name, _, value = item.partition("=")
        if not value.isdigit():
            parser.error(f"--samples: expected NAME=K, got {item!r}")
        samples[name] = int(value)
    if args.out is None and args.checkpoint.startswith("toy:"):
        parser.error("--out: needed with a toy:<preset> checkpoint (it is not a folder to write into)")
    if args.n < 1:
        parser.error(f"--n: expected a positive number of samples, got {args.n}")
    run_config_path = find_run_config(args.checkpoint)
    run = load_yaml(run_config_path) if run_config_path else None
    if args.benchmarks is not None:
        benchmarks = [b for b in args.benchmarks.split(",") if b]
    else:
        task = tasks.get(_run_task(run)) if run else tasks.get("math")
        benchmarks = [f"{task.name}:test"] if task.files is not None else list(PAPER_BENCHMARKS)
    temperature = args.temperature if args.temperature is not None else (PASS_AT_K_TEMPERATURE if args.data else EvalConfig.temperature)
    return EvalConfig(
        data=args.data, split=args.split, n=args.n, checkpoint=args.checkpoint, benchmarks=benchmarks,
        out=args.out or Path(args.checkpoint) / "eval", samples=samples, temperature=temperature,
        top_p=args.top_p, max_new_tokens=args.max_new_tokens, backend=args.backend, dtype=args.dtype,
        device=args.device, local_dir=args.local_dir, prompt_template=args.prompt_template,
        use_chat_template=args.chat_template, enable_thinking=args.enable_thinking, limit=args.limit, seed=args.seed,
        reward=args.reward, reward_kwargs=reward_kwargs, reward_timeout_s=args.reward_timeout, run=run, run_config_path=run_config_path,
    )


def main(argv: list[str] | None = None) -> dict:
    config = parse_args(argv)
    try:
        return evaluate_pass_at_k(config) if config.data else evaluate(config)
    except (ConfigError, DataError) as error:  # what the user must fix: one message, no traceback
        raise SystemExit(f"python -m asymrl.evaluate: {error}") from None


if __name__ == "__main__":
    main()
