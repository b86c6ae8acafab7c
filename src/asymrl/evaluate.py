"""Evaluation of a policy through the rollout engine and the reward (default: the verifier): Avg@k on
benchmarks, or the pass@k curve of one dataset.

    python -m asymrl.evaluate --checkpoint runs/asymgrpo/best \
        --benchmarks math500,aime24,aime25,amc23,olympiadbench --out runs/asymgrpo/eval
    python -m asymrl.evaluate --checkpoint toy:tiny --data toy --split validation --n 64 \
        --temperature 1.0 --limit 1000 --out runs/pass_at_k --prompt-template '{problem}'

pass@k (``--data``): n samples per problem, ``DIR/summary.json`` holds ``pass_at_k`` (k = 1, 2, 4,
..., n; the unbiased estimator of Chen et al. 2021, ``asymrl.pass_at_k``) and ``groups`` (the
fractions of mixed, none-solved and all-solved groups over the first 8 samples of each problem, the
groups GRPO would train on at G = 8, and the mean number of distinct correct responses in those of
them with a correct one), ``DIR/samples.jsonl`` one line per problem (id, ``correct``: the
n samples' rewards). ``--checkpoint`` is a model directory (a run's ``best/``) or ``toy:<preset>``.

Avg@k (PAPER.md section 5): k samples per problem at temperature 0.4, top-p 1.0; k = 5 for
MATH-500 and OlympiadBench, 10 for AIME24, AIME25 and AMC23. The score of a benchmark is the mean
over problems of each problem's fraction of correct samples; its standard error is taken over
problems. Writes ``<out>/<benchmark>.jsonl`` (per problem: responses, extracted answers, rewards)
and ``<out>/summary.json``. ``--reward NAME --reward-kwargs K=V ...`` scores with another reward
(the trainer's ``reward.name`` / ``reward.kwargs``); the prompt is the trainer's ``data.prompt_template``.
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

from asymrl.config import ConfigError, DataConfig, RewardConfig, reward_from_cli
from asymrl.data import load_problems
from asymrl.prompts import render_prompt
from asymrl.reward import build_reward, extract_answer
from asymrl.rollout import SamplingParams, VLLMOptions, build_engine
from asymrl.rollout import choices as backend_choices
from asymrl.metrics import distinct_correct, group_outcomes
from asymrl.pass_at_k import pass_at_k_curve
from asymrl.table1 import AVG_AT_K, mean_and_std


@dataclass
class EvalConfig:
    """Every knob of an evaluation run (the CLI fills it)."""

    checkpoint: str
    benchmarks: list[str]
    out: Path
    samples: dict[str, int] = field(default_factory=dict)  # Avg@k per benchmark; default AVG_AT_K or 4
    temperature: float = 0.4
    top_p: float = 1.0
    max_new_tokens: int = 4096
    backend: str = "auto"
    dtype: str = "bfloat16"
    device: str = "auto"
    local_dir: str | None = None
    prompt_template: str = DataConfig.prompt_template  # the training prompt, defined once
    use_chat_template: bool = True
    enable_thinking: bool | None = False
    limit: int | None = None
    seed: int = 0
    # pass@k mode (``evaluate_pass_at_k``): one dataset, n samples per problem.
    data: str | None = None
    split: str | None = None
    n: int = 64
    reward: RewardConfig = field(default_factory=RewardConfig)
    # Engine name -> its options. Evaluation has the GPU to itself, so vLLM may take most of it.
    engine_options: dict = field(default_factory=lambda: {"vllm": VLLMOptions(gpu_memory_utilization=0.85)})


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


def sample_and_score(engine, reward, tokenizer, problems: list[dict], config: EvalConfig, n: int, temperature: float) -> list[tuple[list, list[float]]]:
    """``n`` completions of every problem at ``temperature`` and their rewards, per problem."""
    prompts = [render_prompt(p["problem"], tokenizer, config.prompt_template, config.use_chat_template, config.enable_thinking)
               for p in problems]
    params = SamplingParams(n=n, temperature=temperature, top_p=config.top_p, max_new_tokens=config.max_new_tokens,
                            seed=config.seed, logprobs=False)
    groups = engine.generate(prompts, params)
    verdicts = reward.score([c.text for group in groups for c in group], [p for p, group in zip(problems, groups) for _ in group])
    scored, offset = [], 0
    for group in groups:
        scored.append((group, verdicts[offset : offset + len(group)]))
        offset += len(group)
    return scored


def _engine_and_tokenizer(config: EvalConfig, engine, tokenizer):
    from transformers import AutoTokenizer

    from asymrl.toy.build import resolve_model_dir

    model_dir = resolve_model_dir(config.checkpoint)
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_dir)
    if engine is None:
        engine = build_engine(config.backend, model_dir, config.engine_options, dtype=config.dtype, device=config.device,
                              seed=config.seed, max_model_len=config.max_new_tokens + 2048)
    return engine, tokenizer


GROUP_SIZE = 8  # the groups of the pass@k summary: the first 8 samples, G of the paper
PASS_AT_K_TEMPERATURE = 1.0  # the policy's own distribution, as in training


def evaluate_pass_at_k(config: EvalConfig, engine=None, tokenizer=None) -> dict:
    """pass@k for k = 1, 2, 4, ..., n and the group outcomes at G = 8 of ``config.checkpoint`` on one
    dataset (``config.data`` / ``config.split``, ``config.n`` samples; module docstring); returns (and
    writes) the summary."""
    data, split, n = config.data, config.split, config.n
    owns_engine = engine is None
    engine, tokenizer = _engine_and_tokenizer(config, engine, tokenizer)
    problems, _ = load_problems(data, split, local_dir=config.local_dir)
    problems = problems[: config.limit] if config.limit else problems
    started = time.time()
    config.out.mkdir(parents=True, exist_ok=True)
    with build_reward(config.reward) as reward:
        before = reward.counts
        scored = sample_and_score(engine, reward, tokenizer, problems, config, n, config.temperature)
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
        "checkpoint": str(config.checkpoint), "data": data, "split": split, "problems": len(problems), "n": n,
        "temperature": config.temperature, "top_p": config.top_p, "max_new_tokens": config.max_new_tokens, "seed": config.seed,
        "reward": config.reward.name,
        "pass_at_k": {str(k): value for k, value in pass_at_k_curve(correct).items()},
        "groups": {"group_size": min(GROUP_SIZE, n), "mixed": outcomes["groups/mixed_frac"],
                   "none_solved": outcomes["groups/none_solved_frac"], "all_solved": outcomes["groups/all_solved_frac"],
                   # distinct correct responses in a group with a correct one: several solution paths?
                   "distinct_correct": sum(solved_distinct) / len(solved_distinct) if solved_distinct else None},
        "seconds": round(time.time() - started, 1),
        **failures,  # each scored 0
    }
    (config.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"{data}: " + ", ".join(f"pass@{k} {100 * v:.1f}%" for k, v in summary["pass_at_k"].items())
          + f"; groups of {summary['groups']['group_size']}: {100 * summary['groups']['mixed']:.1f}% mixed")
    return summary


def evaluate(config: EvalConfig, engine=None, tokenizer=None) -> dict:
    """Evaluate ``config.checkpoint`` on every benchmark; returns (and writes) the summary."""
    owns_engine = engine is None
    engine, tokenizer = _engine_and_tokenizer(config, engine, tokenizer)
    config.out.mkdir(parents=True, exist_ok=True)
    summary = {"checkpoint": str(config.checkpoint), "temperature": config.temperature, "top_p": config.top_p,
               "reward": config.reward.name, "benchmarks": {}}
    with build_reward(config.reward) as reward:
        for benchmark in config.benchmarks:
            started = time.time()
            problems, _ = load_problems(benchmark, None, local_dir=config.local_dir)
            problems = problems[: config.limit] if config.limit else problems
            k = samples_for(benchmark, config)
            before = reward.counts
            scored = sample_and_score(engine, reward, tokenizer, problems, config, k, config.temperature)
            per_problem = []
            with (config.out / f"{file_stem(benchmark)}.jsonl").open("w") as handle:
                for problem, (group, scores) in tqdm(list(zip(problems, scored)), desc=f"write {benchmark}", leave=False):
                    per_problem.append(sum(scores) / len(scores))
                    handle.write(json.dumps({
                        "id": problem["id"], "answer": problem["answer"], "accuracy": per_problem[-1],
                        "samples": [{"response": c.text, "extracted": extract_answer(c.text), "reward": s, "correct": s == 1.0,
                                     "finish_reason": c.finish_reason} for c, s in zip(group, scores)],
                    }) + "\n")
            mean, error = mean_and_standard_error(per_problem)
            summary["benchmarks"][benchmark] = {
                "avg_at_k": k, "problems": len(problems), "accuracy": 100 * mean, "standard_error": 100 * error,
                "seconds": round(time.time() - started, 1),
                **{f"reward_{name}": count - before[name] for name, count in reward.counts.items()},  # each scored 0
            }
            print(f"{benchmark}: Avg@{k} = {100 * mean:.2f} ± {100 * error:.2f} over {len(problems)} problems")
    if owns_engine:
        engine.close()
    (config.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def parse_args(argv: list[str] | None = None) -> EvalConfig:
    # Defaults come from EvalConfig (the paper's evaluation settings), written once.
    parser = argparse.ArgumentParser(prog="python -m asymrl.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a transformers model directory (e.g. <run>/best) or toy:<preset>")
    parser.add_argument("--benchmarks", default="math500,aime24,aime25,amc23,olympiadbench",
                        help="comma-separated names (math500, aime24, aime25, amc23, olympiadbench, toy:validation, a JSONL path, a hub id)")
    parser.add_argument("--samples", default="", help="Avg@k overrides, e.g. 'math500=5,aime24=10'")
    parser.add_argument("--data", default=None, help="pass@k mode: one dataset (toy, a known name, a JSONL path, a hub id) instead of --benchmarks")
    parser.add_argument("--split", default=None, help="pass@k mode: the dataset's split (e.g. validation)")
    parser.add_argument("--n", type=int, default=EvalConfig.n, help="pass@k mode: samples per problem (pass@k for k = 1, 2, 4, ..., n)")
    parser.add_argument("--out", type=Path, default=None, help="default: <checkpoint>/eval")
    parser.add_argument("--temperature", type=float, default=None,
                        help=f"sampling temperature (default: {EvalConfig.temperature}, the paper's, for Avg@k; {PASS_AT_K_TEMPERATURE} for pass@k)")
    parser.add_argument("--top-p", type=float, default=EvalConfig.top_p)
    parser.add_argument("--max-new-tokens", type=int, default=EvalConfig.max_new_tokens)
    parser.add_argument("--backend", default=EvalConfig.backend, choices=backend_choices())
    parser.add_argument("--dtype", default=EvalConfig.dtype)
    parser.add_argument("--device", default=EvalConfig.device)
    parser.add_argument("--local-dir", default=None, help="folder with <benchmark>.jsonl files, used before the hub")
    parser.add_argument("--prompt-template", default=EvalConfig.prompt_template)
    parser.add_argument("--no-chat-template", action="store_true")
    parser.add_argument("--enable-thinking", action="store_true")
    parser.add_argument("--limit", type=int, default=None, help="first N problems of each benchmark")
    parser.add_argument("--seed", type=int, default=EvalConfig.seed)
    parser.add_argument("--reward", default=RewardConfig.name, help="reward: a registered name or module:function (as reward.name)")
    parser.add_argument("--reward-kwargs", nargs="*", default=[], metavar="NAME=VALUE", help="keyword arguments of the reward")
    parser.add_argument("--reward-timeout", type=float, default=RewardConfig.timeout_s, help="seconds per case (as reward.timeout_s)")
    args = parser.parse_args(argv)
    try:
        reward = reward_from_cli(args.reward, args.reward_kwargs, args.reward_timeout)
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
    temperature = args.temperature if args.temperature is not None else (PASS_AT_K_TEMPERATURE if args.data else EvalConfig.temperature)
    return EvalConfig(
        data=args.data, split=args.split, n=args.n, checkpoint=args.checkpoint, benchmarks=[b for b in args.benchmarks.split(",") if b],
        out=args.out or Path(args.checkpoint) / "eval", samples=samples, temperature=temperature,
        top_p=args.top_p, max_new_tokens=args.max_new_tokens, backend=args.backend, dtype=args.dtype,
        device=args.device, local_dir=args.local_dir, prompt_template=args.prompt_template,
        use_chat_template=not args.no_chat_template, enable_thinking=args.enable_thinking, limit=args.limit, seed=args.seed,
        reward=reward,
    )


def main(argv: list[str] | None = None) -> dict:
    config = parse_args(argv)
    return evaluate_pass_at_k(config) if config.data else evaluate(config)


if __name__ == "__main__":
    main()
