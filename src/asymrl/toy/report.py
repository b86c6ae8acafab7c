"""Measure a toy policy: greedy accuracy, sampled accuracy (T = 1), pass@G per level, mixed groups.

    python -m asymrl.toy.report --model src/asymrl/toy/assets/tiny

Writes ``benchmarks/results/toy_base_policy.json`` (or ``--out``) and prints a Markdown table.
A group of G samples is *mixed* when some but not all are correct: only mixed groups give GRPO-style
estimators a non-zero advantage, so their fraction at the start of RL says how much signal RL has.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from asymrl.config import ConfigError, RewardConfig, reward_from_cli
from asymrl.data import load_problems
from asymrl.prompts import render_prompt
from asymrl.reward import build_reward
from asymrl.rollout import SamplingParams, build_engine


def measure(model_dir, split: str = "validation", limit: int | None = None, group_size: int = 8, backend: str = "transformers",
            max_new_tokens: int = 96, seed: int = 0, device: str = "cpu", reward: RewardConfig | None = None) -> dict:
    reward = reward or RewardConfig(name="math")
    problems, _ = load_problems(f"toy:{split}")
    problems = problems[:limit] if limit else problems
    engine = build_engine(backend, model_dir, seed=seed, max_model_len=256, device=device)
    prompts = [render_prompt(p["problem"], engine.tokenizer, "{problem}") for p in problems]
    greedy = engine.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens))
    sampled = engine.generate(prompts, SamplingParams(n=group_size, temperature=1.0, max_new_tokens=max_new_tokens, seed=seed))
    with build_reward(reward) as scorer:
        greedy_scores = scorer.score([g[0].text for g in greedy], problems)
        flat = scorer.score([c.text for g in sampled for c in g], [p for p in problems for _ in range(group_size)])
    engine.close()
    per_level: dict[int, dict[str, list[float]]] = {}
    lengths = []
    for index, problem in enumerate(problems):
        group = flat[index * group_size : (index + 1) * group_size]
        stats = per_level.setdefault(problem["level"], {"greedy": [], "sampled": [], "pass": [], "mixed": []})
        stats["greedy"].append(greedy_scores[index])
        stats["sampled"].append(sum(group) / group_size)
        stats["pass"].append(float(any(group)))
        stats["mixed"].append(float(0 < sum(group) < group_size))
        lengths.extend(len(c.response_ids) for c in sampled[index])

    def summarise(stats: dict[str, list[float]]) -> dict[str, float]:
        return {"problems": len(stats["greedy"]), "greedy": _mean(stats["greedy"]), "sampled": _mean(stats["sampled"]),
                f"pass@{group_size}": _mean(stats["pass"]), "mixed_groups": _mean(stats["mixed"])}

    everything = {key: [v for s in per_level.values() for v in s[key]] for key in ("greedy", "sampled", "pass", "mixed")}
    return {
        "model": str(model_dir), "split": split, "reward": reward.name, "group_size": group_size,
        "mean_response_tokens": _mean(lengths),
        "overall": summarise(everything), "levels": {str(level): summarise(per_level[level]) for level in sorted(per_level)},
    }


def _mean(values: list[float]) -> float:
    return round(100 * sum(values) / len(values), 2) if values else float("nan")


def to_markdown(report: dict) -> str:
    k = report["group_size"]
    lines = [f"| level | problems | greedy % | sampled (T=1) % | pass@{k} % | mixed groups % |", "|---|---|---|---|---|---|"]
    rows = [(level, stats) for level, stats in report["levels"].items()] + [("all", report["overall"])]
    for level, s in rows:
        lines.append(f"| {level} | {s['problems']} | {s['greedy']:.1f} | {s['sampled']:.1f} | {s[f'pass@{k}']:.1f} | {s['mixed_groups']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m asymrl.toy.report", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="policy dir (default: the tiny base policy)")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--backend", default="transformers")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="tiny", help="embedded preset measured when --model is not given")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/toy_base_policy.json"))
    parser.add_argument("--reward", default=RewardConfig.name, help="reward: a registered name or module:function (as reward.name)")
    parser.add_argument("--reward-kwargs", nargs="*", default=[], metavar="NAME=VALUE", help="keyword arguments of the reward")
    args = parser.parse_args()
    try:
        reward = reward_from_cli(args.reward, args.reward_kwargs)
    except ConfigError as error:
        parser.error(str(error))
    if args.model is None:
        from asymrl.toy.build import ensure_base_policy

        args.model = ensure_base_policy(args.preset)
    report = measure(args.model, args.split, args.limit, backend=args.backend, device=args.device, reward=reward)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from asymrl.provenance import provenance

    report = {"provenance": provenance(shlex.join(["python", "-m", "asymrl.toy.report", *sys.argv[1:]])), **report}
    args.out.write_text(json.dumps(report, indent=2))
    print(to_markdown(report))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
