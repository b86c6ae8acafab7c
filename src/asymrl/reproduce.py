"""``make reproduce-table1``: train every row of Table 1, evaluate each row's best checkpoint, and
assemble the table and the paper's figures.

    python -m asymrl.reproduce --scale tiny            # 15 rows x 2 seeds, embedded tiny policy, CPU
    python -m asymrl.reproduce --scale paths           # 15 rows x 4 seeds, the exploration testbed, CPU
    python -m asymrl.reproduce --scale small --gpus 0  # embedded small policy, one GPU
    python -m asymrl.reproduce --scale paper           # Qwen3-4B, the paper's settings (GPU-hours!)

A run is one (row, seed): ``<out>/<row>/seed<seed>/``. Its config is the row's YAML in
``configs/table1/`` (``base.yaml``, the paper's setting, with the row's changes: ``inherit: base.yaml``)
with the scale's overrides on top (written to ``row.yaml`` there); every run's config is built and
checked before anything starts. A scale (``SCALES``) is data: its overrides, budget and the fields
that decide what the command does (GPU needed, cost estimate, pause, title of the base row). Training is
``train.py`` in a child process (``accelerate launch`` at paper scale), evaluation is
``python -m asymrl.evaluate`` on the run's ``best/`` checkpoint: Avg@k per benchmark, or, at a scale
with ``pass_at_k_n``, n samples at T = 1 per problem whose pass@k curve (k = 1, 2, ..., n) is kept per
run and drawn per row beside the base policy's (does RL widen or narrow the solvable set?), the
table's accuracy being pass@1 (= Avg@n at T = 1). A run whose ``summary.json``
shows every step done is not trained again, an interrupted one resumes from its last checkpoint
(``train.resume=auto``), and an evaluated one is not evaluated again: re-running the command
after a crash or Ctrl-C only does what is missing. At the end ``<out>/`` holds ``table1.md``,
``table1.csv``, ``table1.tex``, ``results.json``, ``report.md`` and ``figures/*.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from asymrl.config import Config, ConfigError, build_config, check_world_size, load_yaml, parse_override
from asymrl.metrics import all_summaries
from asymrl.provenance import provenance
from asymrl.table1 import AVG_AT_K, BENCHMARKS, ROWS, assemble, mean_and_std, qualitative_findings, run_statistics, to_csv, to_latex, to_markdown

REPO = Path(__file__).resolve().parents[2]
ROW_CONFIGS = REPO / "configs" / "table1"

# The embedded tasks' settings shared by the tiny, small and paths scales: the task's train split for
# training, its validation split for picking the best checkpoint, its test split for the table.
_TOY = {
    "model.dtype": "float32",
    "model.gradient_checkpointing": False,
    "data.train": "toy",
    "data.validation": "toy",
    "data.validation_split": "validation",
    "data.prompt_template": "{problem}",   # the toy policy was warm-started on bare problems
    "data.enable_thinking": None,
    "rollout.backend": "transformers",
    "rollout.max_new_tokens": 64,
    "rollout.vllm.sleep_mode": False,
    "train.micro_batch_size": 64,
    "train.epochs": 1,
    "train.save_every": 10,
    "eval.every_steps": 10,
    "eval.max_problems": 300,
    "log.progress_bar": False,             # children write to log files
}

# The exploration testbed (asymrl.toy.paths, its base policy toy:paths; README "testbed"): the same
# settings for every row. 8 prompts x G = 8 per step and 2 optimizer steps per RL step (the paper's
# ratio) so that 14 rows x 4 seeds x 150 steps fit 2 CPU cores in about two hours; not tuned on any row.
_PATHS = {
    **_TOY,
    "model.path": "toy:paths",
    "data.train": "paths",
    "data.validation": "paths",
    "reward.name": "paths",
    "rollout.max_new_tokens": 27,          # the longest correct answer (8 hops) is 26 characters + EOS
    "train.lr": 1e-4,                      # configs/paths_asymgrpo.yaml's (that of toy_asymgrpo.yaml)
    "train.prompts_per_step": 8,
    "train.mini_batch_prompts": 4,
    "train.micro_batch_size": 32,
    "train.save_every": 30,
    "eval.every_steps": 30,                # greedy, on the first 200 validation problems: picks best/
    "eval.max_problems": 200,
    "log.logprob_increment_every": 10,     # its extra forward pass would be ~15% of every step
}


# The testbed in its entropy-collapse regime (docs/collapse_regime.md, found by `python -m asymrl.sweep`
# with GRPO alone): a learning rate at which GRPO's token entropy falls by about three quarters over
# 800 steps while validation accuracy rises and saturates, the same for every row; greedy validation on
# 500 problems every 50 steps picks best/.
_COLLAPSE = {
    **_PATHS,
    "train.lr": 3e-4,
    "train.save_every": 100,
    "eval.every_steps": 50,
    "eval.max_problems": 500,
}


@dataclass(frozen=True)
class Scale:
    """How big a reproduction is: what each row's config becomes, how runs are evaluated, and what
    the command does before starting (its fields decide; never the scale's name)."""

    name: str
    overrides: dict                      # dotted key -> value, on top of each row's YAML
    steps: int | None                    # train.total_steps of every trained row (None: the YAML's)
    seeds: tuple[int, ...]
    benchmarks: tuple[str, ...]
    samples: dict                        # Avg@k per benchmark
    eval_max_new_tokens: int
    eval_device: str
    parallel: int                        # runs at a time
    threads_per_run: int | None          # OMP threads of each child (CPU scales)
    needs_gpu: bool                      # refuse to start where no GPU is visible
    base_row_title: str | None           # title of the untrained row (None: the paper's "Qwen3-4B")
    estimate_cost: bool = False          # print the GPU-hour estimate (PAPER_ESTIMATE) before starting
    confirm_seconds: int = 0             # pause before starting, to read the estimate (0: none; --yes skips)
    one_run_per_gpu: bool = True         # with --gpus: one run per listed GPU at a time (False: a run takes the node)
    launcher: tuple[str, ...] = ("{python}", "train.py")
    budget_note: str = ""
    eval_limit: int | None = None        # first N problems of each benchmark (quick checks)
    pass_at_k_n: int | None = None       # evaluate by pass@k (n samples at T = 1) instead of Avg@k
    # (n, problems): the first seed of every row is also evaluated by pass@k with n samples on the
    # first `problems` test problems, the large-k end of the curve (eval_wide/).
    pass_at_k_wide: tuple[int, int] | None = None
    wide_every_seed: bool = False        # pass_at_k_wide on every seed, not the first only (a spread at large k)
    # Also evaluate the last step's policy (train.save_final, eval_final/) as eval/ evaluates best/:
    # which of the two ranks runs more stably is a question of the study, not a given.
    evaluate_final: bool = False
    # Which evaluation the table, its comparisons and findings read: "best" (eval/, the paper's
    # protocol) or "final" (eval_final/; needs evaluate_final). The other stays beside it on the page.
    headline: str = "best"
    # With --publish: an invocation without --seeds adds this many whole seeds to every row (the
    # next ones not yet published), so that each fits a sitting and the table grows seed by seed.
    seeds_per_invocation: int | None = None


SCALES: dict[str, Scale] = {
    "paper": Scale(
        name="paper", overrides={}, steps=None, seeds=(42,), benchmarks=BENCHMARKS, samples=dict(AVG_AT_K),
        eval_max_new_tokens=4096, eval_device="auto", parallel=1, threads_per_run=None,
        needs_gpu=True, base_row_title=None, estimate_cost=True, confirm_seconds=10, one_run_per_gpu=False,
        launcher=("accelerate", "launch", "--config_file", "launch/gpu4_zero2.yaml", "train.py"),
        budget_note="Qwen3-4B on one node of 4 GPUs, as the paper (Gu et al. 2026, appendix C)",
    ),
    "small": Scale(
        name="small",
        overrides={**_TOY, "model.path": "toy:small", "train.lr": 3e-5, "train.prompts_per_step": 32,
                   "train.mini_batch_prompts": 16},
        steps=30, seeds=(0,), benchmarks=("toy:test",), samples={"toy:test": 4}, eval_max_new_tokens=64,
        eval_device="auto", parallel=1, threads_per_run=None, needs_gpu=True, base_row_title="Base policy (toy:small)",
        budget_note="embedded small policy (~30M), one GPU, all 15 rows in about 30 minutes",
    ),
    "tiny": Scale(
        name="tiny",
        overrides={**_TOY, "model.path": "toy:tiny", "train.lr": 1e-4, "train.prompts_per_step": 16,
                   "train.mini_batch_prompts": 8},
        steps=60, seeds=(0, 1), benchmarks=("toy:test",), samples={"toy:test": 4}, eval_max_new_tokens=64,
        eval_device="cpu", parallel=2, threads_per_run=1, needs_gpu=False, base_row_title="Base policy (toy:tiny)",
        budget_note="embedded tiny policy (0.8M), 2 CPU cores, 15 rows x 2 seeds in under an hour",
    ),
    "paths": Scale(
        name="paths", overrides=_PATHS, steps=150, seeds=(0, 1, 2, 3), benchmarks=("paths:test",), samples={},
        pass_at_k_n=2, pass_at_k_wide=(32, 100), eval_max_new_tokens=27, eval_device="cpu", parallel=2, threads_per_run=1, needs_gpu=False,
        base_row_title="Base policy (toy:paths)",
        budget_note="the exploration testbed (path-finding, base policy toy:paths, 0.8M), 2 CPU cores, "
                    "15 rows x 4 seeds x 150 steps, each run's best checkpoint evaluated on the 2,000 test problems "
                    "with 2 samples at T = 1",
    ),
    "collapse": Scale(
        name="collapse", overrides=_COLLAPSE, steps=800, seeds=(0, 1, 2, 3), benchmarks=("paths:test",), samples={},
        pass_at_k_n=4, pass_at_k_wide=(64, 200), wide_every_seed=True, evaluate_final=True,
        # One seed a sitting: 14 trained runs of ~9-10 minutes each (training and 3 evaluations, one
        # thread), 2 at a time: 55-68 minutes measured on 2 cores (docs/table1_collapse.md); two seeds
        # (~2-2.3 h) would not fit the 2 hours a sitting has.
        seeds_per_invocation=1,
        # The last step's policy heads the table: on 4 GRPO seeds of the sweep its test pass@1 varied
        # less across seeds than best/'s (docs/collapse_regime.md); best/ stays beside it.
        headline="final",
        eval_max_new_tokens=27, eval_device="cpu", parallel=2, threads_per_run=1, needs_gpu=False,
        base_row_title="Base policy (toy:paths)",
        budget_note="the exploration testbed in its entropy-collapse regime (path-finding, base policy toy:paths): every row "
                    "800 steps of 8 prompts x 8 rollouts at lr 3e-4, two optimizer steps per RL step; the last step's policy "
                    "(the table) and the best greedy-validation checkpoint evaluated on the 2,000 test problems with 4 samples "
                    "at T = 1, the best checkpoint also to pass@64 on the first 200 (every seed)",
    ),
}

# Assumptions of the paper-scale estimate (printed with it). Update throughputs are scaled from the
# 1.5B-shape measurement in benchmarks/results/update_qwen2.5-1.5b_cuda.json (23.2k tokens/s on
# one H100) by parameter count; the generation rate and response length are assumptions.
PAPER_ESTIMATE = {
    "mean_response_tokens": 1200,           # assumed: Qwen3-4B non-thinking on MATH
    "prompt_tokens": 150,                   # assumed
    "update_tokens_per_gpu_s": 23_200 * 1.5 / 4.0,
    "logprob_passes": 1.4,                  # update (fwd+bwd) + old/increment forward passes
    "generate_tokens_per_gpu_s": 20_000,    # assumed vLLM bf16 decode rate of a 4B model per H100
    "gpus": 4,
}


@dataclass
class Run:
    row: str
    seed: int
    config: Config
    directory: Path
    wide: bool = False  # also evaluated by the scale's pass_at_k_wide (the first seed of a row)
    final: bool = False  # also its final/ checkpoint evaluated (eval_final/)

    @property
    def name(self) -> str:
        return f"{self.row}/seed{self.seed}"

    @property
    def trained(self) -> bool:
        """Did training reach its last step? (A run stopped by train.max_wall_s did not.)"""
        path = self.directory / "summary.json"
        if not path.is_file():
            return False
        summary = json.loads(path.read_text())
        target = self.config.train.total_steps
        return summary["steps"] >= (target if target is not None else summary.get("total_steps", math.inf))

    @property
    def evaluated(self) -> bool:
        return (self.directory / "eval" / "summary.json").is_file()

    @property
    def wide_evaluated(self) -> bool:
        return not self.wide or (self.directory / "eval_wide" / "summary.json").is_file()

    @property
    def final_evaluated(self) -> bool:
        return not self.final or (self.directory / "eval_final" / "summary.json").is_file()

    @property
    def done(self) -> bool:
        return self.trained and self.evaluated and self.wide_evaluated and self.final_evaluated


def row_values(row: str, scale: Scale, seed: int, out: Path, config_file: Path | None = None,
               row_overrides: dict | None = None) -> dict:
    """The flat config of one run: the row's YAML (``configs/table1/<row>.yaml`` unless
    ``config_file``), the scale's overrides, then ``row_overrides`` (what a row changes among the knobs
    a scale sets, such as the batch), the seed and directory."""
    values = load_yaml(config_file or ROW_CONFIGS / f"{row}.yaml")
    untrained = values.get("train.total_steps") == 0  # the base-model row is evaluated, never updated
    values.update(scale.overrides)
    values.update(row_overrides or {})
    if scale.steps is not None and not untrained:
        values["train.total_steps"] = scale.steps
    if scale.evaluate_final and not untrained:
        values["train.save_final"] = True
    values["train.seed"] = seed
    values["train.output_dir"] = str(out / row / f"seed{seed}")
    values["train.resume"] = "auto"
    return values


def plan(scale: Scale, out: Path, rows: list[str], seeds: tuple[int, ...], config_files: dict[str, Path] | None = None,
         row_overrides: dict[str, dict] | None = None) -> list[Run]:
    """Every (row, seed) run, seed by seed: an invocation stopped part-way leaves every row with its
    first seeds rather than some rows with all of them and others with none. ``config_files`` names
    the YAML of rows that are not Table 1's, ``row_overrides`` what a row sets on top of the scale.
    Raises ConfigError for a run that cannot start."""
    runs = []
    for seed in seeds:
        for row in rows:
            config = build_config(row_values(row, scale, seed, out, (config_files or {}).get(row), (row_overrides or {}).get(row)))
            if scale.launcher[:1] == ("{python}",):  # one process: its batch shapes are checked here, not when its turn comes
                check_world_size(config, 1)
            wide = scale.pass_at_k_wide is not None and (scale.wide_every_seed or seed == seeds[0])
            final = scale.evaluate_final and config.train.total_steps != 0
            runs.append(Run(row, seed, config, Path(config.train.output_dir), wide, final))
    return runs


def paper_gpu_hours(runs: list[Run]) -> tuple[float, dict]:
    """Estimated GPU-hours of the trained runs at paper scale (assumptions in PAPER_ESTIMATE)."""
    from asymrl.data import count_problems

    e = PAPER_ESTIMATE
    total, details = 0.0, {}
    train_sizes: dict[tuple, int] = {}
    for run in runs:
        train, data = run.config.train, run.config.data
        steps = train.total_steps
        if steps is None:
            source = (data.train, data.train_split, data.local_dir)
            if source not in train_sizes:
                train_sizes[source] = count_problems(data.train, split=data.train_split, local_dir=data.local_dir)
            steps = math.ceil(train_sizes[source] / train.prompts_per_step) * train.epochs
        rollouts = train.prompts_per_step * run.config.rollout.group_size
        tokens = rollouts * (e["mean_response_tokens"] + e["prompt_tokens"])
        seconds_per_step = (rollouts * e["mean_response_tokens"] / e["generate_tokens_per_gpu_s"]
                            + tokens * e["logprob_passes"] * train.ppo_epochs / e["update_tokens_per_gpu_s"]) / e["gpus"]
        hours = steps * seconds_per_step * e["gpus"] / 3600
        details[run.name] = {"steps": steps, "gpu_hours": round(hours, 1)}
        total += hours
    return total, details


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _child_env(scale: Scale, gpu: str | None) -> dict:
    env = dict(os.environ)
    if scale.threads_per_run:
        env["OMP_NUM_THREADS"] = str(scale.threads_per_run)
        env["MKL_NUM_THREADS"] = str(scale.threads_per_run)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def _call(command: list[str], log_path: Path, env: dict) -> None:
    """Run a child process with its output appended to ``log_path``; raise naming the log on failure."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        log.write(f"\n$ {shlex.join(command)}\n")
        log.flush()
        code = subprocess.call(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        tail = log_path.read_text().splitlines()[-15:]
        raise RuntimeError(f"exit code {code}; last lines of {log_path}:\n    " + "\n    ".join(tail))


def execute(run: Run, scale: Scale, gpu: str | None) -> str:
    """Train (or resume) one run, then evaluate its best checkpoint; skips what is already done."""
    env = _child_env(scale, gpu)
    done = []
    if not run.trained:
        run.directory.mkdir(parents=True, exist_ok=True)
        run.config.save(run.directory / "row.yaml")
        command = [part.format(python=sys.executable) for part in scale.launcher]
        _call(command + ["--config", str(run.directory / "row.yaml")], run.directory / "train.log", env)
        done.append("trained")
    if scale.pass_at_k_n:  # one dataset, n samples at evaluate's pass@k temperature (1.0)
        selection = ["--data", scale.benchmarks[0], "--n", str(scale.pass_at_k_n)]
    else:                  # temperature, top-p: evaluate's (the paper's)
        selection = ["--benchmarks", ",".join(scale.benchmarks), "--samples", ",".join(f"{b}={k}" for b, k in scale.samples.items())]
    selection += ["--limit", str(scale.eval_limit)] if scale.eval_limit else []
    for folder, checkpoint, needed in (("eval", "best", not run.evaluated), ("eval_final", "final", not run.final_evaluated)):
        if needed:
            _call(evaluate_command(run, scale, selection, folder, checkpoint), run.directory / "eval.log", env)
            done.append(f"{checkpoint}/ evaluated")
    if not run.wide_evaluated:
        n, problems = scale.pass_at_k_wide
        selection = ["--data", scale.benchmarks[0], "--n", str(n), "--limit", str(min(problems, scale.eval_limit or problems))]
        _call(evaluate_command(run, scale, selection, "eval_wide"), run.directory / "eval.log", env)
        done.append(f"pass@k to k = {n}")
    return ", ".join(done) or "already done"


def evaluate_command(run: Run, scale: Scale, selection: list[str], folder: str, checkpoint: str = "best") -> list[str]:
    """``python -m asymrl.evaluate`` on the run's ``best/`` (or ``checkpoint``), what to evaluate on
    (``selection``), writing into ``<run>/<folder>/``. Evaluation reads the run's config.yaml beside
    the checkpoint and scores with the prompt, chat settings and reward the run trained with; the
    scale sets the answer length."""
    command = [
        sys.executable, "-m", "asymrl.evaluate", "--checkpoint", str(run.directory / checkpoint), *selection,
        "--max-new-tokens", str(scale.eval_max_new_tokens),
        "--backend", run.config.rollout.backend, "--dtype", run.config.model.dtype, "--device", scale.eval_device,
        "--seed", str(run.seed), "--out", str(run.directory / folder),
    ]
    return command + (["--local-dir", run.config.data.local_dir] if run.config.data.local_dir else [])


def run_all(runs: list[Run], scale: Scale, parallel: int, gpus: list[str], desc: str = "table 1 runs",
            on_done: Callable[[Run], None] | None = None) -> list[tuple[Run, str]]:
    """Execute runs, ``parallel`` at a time (each pinned to one of ``gpus`` when given), calling
    ``on_done`` on each as soon as it has finished (publishing it, so that a sitting cut short keeps
    every run it finished)."""
    failures = []
    with ThreadPoolExecutor(max_workers=parallel) as pool, tqdm(total=len(runs), desc=desc, dynamic_ncols=True) as bar:
        pending = {}
        queue = list(runs)

        def submit(slot: int) -> None:
            run = queue.pop(0)
            gpu = gpus[slot % len(gpus)] if gpus else None
            pending[pool.submit(execute, run, scale, gpu)] = (run, slot, time.time())

        for slot in range(min(parallel, len(queue))):
            submit(slot)
        while pending:
            future = next(as_completed(pending))
            run, slot, started = pending.pop(future)
            try:
                outcome = future.result()
                bar.write(f"{run.name}: {outcome} ({time.time() - started:.0f} s)")
                if on_done is not None:
                    on_done(run)
            except Exception as error:  # one failed run must not stop the others
                failures.append((run, str(error)))
                bar.write(f"{run.name}: FAILED: {error}")
            bar.update(1)
            if queue:
                submit(slot)
    return failures


def _scores(evaluation: dict) -> dict[str, float]:
    """Benchmark -> the table's accuracy (%) of one evaluation's summary.json: pass@1 in pass@k mode,
    Avg@k per benchmark otherwise."""
    if "pass_at_k" in evaluation:
        return {evaluation["data"]: 100 * evaluation["pass_at_k"]["1"]}
    return {benchmark: scores["accuracy"] for benchmark, scores in evaluation.get("benchmarks", {}).items()}


def collect(runs: list[Run], extra_summaries: tuple = (), headline: str = "best") -> dict:
    """Per row: per-seed evaluation scores and training diagnostics of every finished run (the
    registered diagnostics' summaries and ``extra_summaries``, ``asymrl.metrics.Summary``).
    ``scores`` are the ``headline`` checkpoint's (best/ or final/), ``scores_best`` / ``scores_final``
    each checkpoint's where it was evaluated."""
    from asymrl.metrics import read_metrics

    results: dict[str, dict] = {}
    for run in runs:
        summary_path = run.directory / "eval" / "summary.json"
        if not summary_path.is_file():
            continue
        evaluation = json.loads(summary_path.read_text())
        train_summary = json.loads((run.directory / "summary.json").read_text())
        entry = results.setdefault(run.row, {"seeds": [], "scores": {}, "diagnostics": []})
        entry["seeds"].append(run.seed)
        if "pass_at_k" in evaluation:
            entry.setdefault("pass_at_k", []).append(evaluation["pass_at_k"])
        final_path = run.directory / "eval_final" / "summary.json"
        evaluations = {"best": evaluation, "final": json.loads(final_path.read_text()) if final_path.is_file() else None}
        # An untrained row (the base policy) has one evaluation, of the policy itself: it heads its row
        # whichever checkpoint heads the others'.
        row_headline = headline if run.final else "best"
        for checkpoint, summary in evaluations.items():
            for benchmark, score in (_scores(summary) if summary else {}).items():
                if checkpoint == row_headline:
                    entry["scores"].setdefault(benchmark, []).append(score)
                if evaluations["final"] is not None:  # both evaluated: each kept under its name
                    entry.setdefault(f"scores_{checkpoint}", {}).setdefault(benchmark, []).append(score)
        wide_path = run.directory / "eval_wide" / "summary.json"
        if run.wide and wide_path.is_file():
            wide = json.loads(wide_path.read_text())["pass_at_k"]
            entry.setdefault("pass_at_k_wide", wide)  # the first seed's (plans list seeds in order)
            entry.setdefault("pass_at_k_wide_seeds", []).append(wide)
            # which checkpoint that was: a trained run whose validation never beat the start has
            # best/ = step 0, the base policy, and its wide pass@k is the base's
            entry.setdefault("pass_at_k_wide_best_steps", []).append(train_summary["best_step"])
        # A published run (publish_run) keeps its full-resolution statistics beside thinned metrics.
        statistics_path = run.directory / "statistics.json"
        statistics = (json.loads(statistics_path.read_text()) if statistics_path.is_file()
                      else run_statistics(read_metrics(run.directory / "metrics.jsonl"), extra=extra_summaries))
        entry["diagnostics"].append({
            **statistics,
            "best_val_accuracy": 100 * train_summary["best_val_accuracy"],
            "best_step": train_summary["best_step"],
            "train_wall_s": train_summary["wall_s"],
        })
    return results


# What a published run's metrics.jsonl keeps (metric-name prefixes): what the page's figures read.
PUBLISHED_METRICS = ("entropy/", "groups/", "logp_increment/", "val/", "reward/accuracy", "diversity/", "actor/sign/grad_share_pos",
                     "actor/clip_frac", "alpha/", "response/length_mean", "cov/p=")
# Logged every few steps only (validation, the log-prob increment, the sign-split gradient norms): a
# record holding one is always kept, whichever step it falls on.
SPARSE_METRICS = ("val/", "logp_increment/", "actor/sign/grad_")


def publish_run(run: Run, published: Path, covariance_steps: int, every: int = 5, extra_summaries: tuple = ()) -> Path:
    """Copy what a finished run's page needs, not its checkpoints, to ``published/<row>/seed<k>/``, a
    folder ``collect`` reads like the run's own: row.yaml (its config), summary.json, each evaluation's summary.json,
    statistics.json (the run statistics at full resolution) and metrics.jsonl thinned to
    ``PUBLISHED_METRICS`` at every ``every``-th step, every step up to ``covariance_steps`` (the
    covariance figure's window) and, at other steps, what ``SPARSE_METRICS`` logged there; values to 6
    significant digits. Small enough
    to commit for every run, so that a page grows across sittings and none is lost."""
    from asymrl.metrics import read_metrics

    target = published / run.row / f"seed{run.seed}"
    if (run.directory / "statistics.json").is_file():
        # already a published run (reused from another page's folder): its metrics are thinned and
        # its statistics are the full-resolution ones, so it is copied as it is
        shutil.copytree(run.directory, target, dirs_exist_ok=True)
        return target
    target.mkdir(parents=True, exist_ok=True)
    write_published_config(run, target)
    summary = json.loads((run.directory / "summary.json").read_text())
    summary.pop("run_dir", None)
    (target / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    for folder in ("eval", "eval_wide", "eval_final"):
        if (run.directory / folder / "summary.json").is_file():
            (target / folder).mkdir(exist_ok=True)
            shutil.copyfile(run.directory / folder / "summary.json", target / folder / "summary.json")
    records = read_metrics(run.directory / "metrics.jsonl")
    (target / "statistics.json").write_text(json.dumps(run_statistics(records, extra=extra_summaries), indent=1) + "\n")
    with (target / "metrics.jsonl").open("w") as handle:
        for record in records:
            step = record["step"]
            # a step kept for its sparse metrics only keeps those (curves stay at every ``every``-th step)
            names = PUBLISHED_METRICS if step % every == 0 or step <= covariance_steps else SPARSE_METRICS
            kept = {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in record.items() if k.startswith(names)}
            if not kept and step:
                continue
            handle.write(json.dumps({"step": step, **kept}) + "\n")
    return target


def write_published_config(run: Run, target: Path) -> None:
    """``target/row.yaml``: the config ``run`` trains with, its output folder named relative to the
    published folder (not the machine's path), so that a study can reuse the published run
    (``side_by_side --reuse``) on any clone."""
    relative = replace(run.config.train, output_dir=f"{run.row}/seed{run.seed}")
    replace(run.config, train=relative).save(target / "row.yaml")


def published_seeds(published: Path, rows: list[str]) -> tuple[set[int], set[int]]:
    """(seeds published for every row, seeds published for some row) under ``published``."""
    found = {row: {int(p.name.removeprefix("seed")) for p in (published / row).glob("seed*") if (p / "eval" / "summary.json").is_file()}
             for row in rows}
    every = set.intersection(*found.values()) if found else set()
    return every, set.union(*found.values()) if found else set()


def next_seeds(published: Path, rows: list[str], count: int) -> tuple[int, ...]:
    """The ``count`` seeds an invocation adds: first those some row has published and another not
    (an interrupted sitting), then the next new ones."""
    complete, partial = published_seeds(published, rows)
    start = max(partial, default=-1) + 1
    return tuple((sorted(partial - complete) + list(range(start, start + count)))[:count])


def rows_and_seeds(parser: argparse.ArgumentParser, args: argparse.Namespace, known: list[str], scale: Scale,
                   default_seeds: tuple[int, ...]) -> tuple[list[str], tuple[int, ...]]:
    """The rows (``--rows``, default all of ``known``) and seeds of an invocation: ``--seeds``, or with
    ``--publish`` the scale's next ``seeds_per_invocation`` seeds (``next_seeds``), or ``default_seeds``."""
    rows = [r for r in args.rows.split(",") if r] or known
    unknown = [r for r in rows if r not in known]
    if unknown:
        parser.error(f"--rows: unknown row(s) {', '.join(unknown)}; known: {', '.join(known)}")
    seeds = tuple(int(s) for s in args.seeds.split(",") if s)
    if not seeds and args.publish and scale.seeds_per_invocation:
        seeds = next_seeds(args.publish / "runs", rows, scale.seeds_per_invocation)
    return rows, seeds or default_seeds


def publisher(runs: list[Run], published: Path, extra_summaries: tuple = ()) -> Callable[[Run], None]:
    """``run_all``'s ``on_done`` under ``--publish``: ``publish_run`` into ``published/runs`` as each run
    finishes. The runs of ``runs`` already finished (by an earlier sitting, or reused) are published
    at once, so that every finished run is published exactly when it is known to be finished."""

    def publish(run: Run) -> None:
        publish_run(run, published / "runs", run.config.log.covariance_steps, extra_summaries=extra_summaries)

    for run in runs:
        if run.done:
            publish(run)
    return publish


def check_page_only(parser: argparse.ArgumentParser, publish: Path | None, rows: list[str]) -> None:
    """Stop with the parser's message unless ``--page-only`` has a published folder to rebuild."""
    if not publish:
        parser.error("--page-only rebuilds the page of a --publish DIR; name the DIR")
    if not published_seeds(publish / "runs", rows)[1]:
        parser.error(f"--page-only: no run is published under {publish / 'runs'}")


def published_runs(published: Path, scale: Scale, rows: list[str], wall_s: float, runs_done: int,
                   config_files: dict[str, Path] | None = None, row_overrides: dict[str, dict] | None = None) -> tuple[list[Run], float]:
    """Record this invocation under ``published`` and return every published run (all seeds found,
    as ``Run``s reading the published folders) and the wall time of every invocation that published."""
    total_s = record_invocation(published, wall_s, runs_done)
    _, every_seed = published_seeds(published / "runs", rows)
    return plan(scale, published / "runs", rows, tuple(sorted(every_seed)), config_files, row_overrides), total_s


def row_titles(scale: Scale) -> dict[str, str]:
    """Titles that differ from the paper's at this scale: below paper scale the untrained row is
    another base policy than Qwen3-4B."""
    return {} if scale.base_row_title is None else {"base": scale.base_row_title}


def record_invocation(out: Path, wall_s: float, runs_done: int) -> float:
    """Append this invocation to ``<out>/invocations.jsonl`` and return the wall time of all of them
    that ran something: the table's cost across resumes (a re-run that only re-assembles adds ~0)."""
    path = out / "invocations.jsonl"
    with path.open("a") as handle:
        handle.write(json.dumps({"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": round(wall_s, 1), "runs_done": runs_done}) + "\n")
    return sum(entry["wall_s"] for entry in map(json.loads, path.read_text().splitlines()) if entry["runs_done"])


def write_outputs(results: dict, scale: Scale, out: Path, runs: list[Run], wall_s: float) -> Path:
    """The table (Markdown, CSV, LaTeX), results.json, the figures and report.md; ``wall_s`` is the
    wall time of every invocation that trained or evaluated (``record_invocation``)."""
    seeds = sorted({run.seed for run in runs})
    from asymrl.plots import plot_paper_groups, plot_pass_at_k_by_row, plot_table1_figures

    # Each cell: the mean over seeds and their standard deviation (no spread with a single seed).
    scores = {row: {b: mean_and_std(v) for b, v in entry["scores"].items()} for row, entry in results.items()}
    table = assemble(scores, benchmarks=scale.benchmarks)
    titles = row_titles(scale)
    (out / "table1.md").write_text(to_markdown(table, titles))
    (out / "table1.csv").write_text(to_csv(table, titles))
    (out / "table1.tex").write_text(to_latex(table, titles))
    findings = qualitative_findings(results, benchmark=scale.benchmarks[0])
    (out / "results.json").write_text(json.dumps({"scale": scale.name, "provenance": provenance(shlex.join(["python", "-m", "asymrl.reproduce", *sys.argv[1:]])),
                                                  "wall_s": round(wall_s, 1), "rows": results, "findings": findings}, indent=2))
    by_row: dict[str, list[Path]] = {}
    for run in runs:
        if (run.directory / "metrics.jsonl").is_file():
            by_row.setdefault(run.row, []).append(run.directory)
    figures = plot_table1_figures(by_row, out / "figures", titles, covariance_steps=runs[0].config.log.covariance_steps)
    figures.append(plot_paper_groups(by_row, out / "figures" / "paper_groups.png", {**dict(ROWS), **titles}))
    curves = {row: entry["pass_at_k"] for row, entry in results.items() if entry.get("pass_at_k")}
    wide = {row: entry["pass_at_k_wide"] for row, entry in results.items() if entry.get("pass_at_k_wide")}
    if curves:
        figures.append(plot_pass_at_k_by_row(curves, out / "figures" / "pass_at_k.png", titles, wide=wide))
    lines = [f"# Table 1 at scale `{scale.name}`", "",
             f"{scale.budget_note}. Seeds {', '.join(map(str, seeds))}; each cell is the "
             f"{'last step' if scale.headline == 'final' else 'best-validation checkpoint'}'s test accuracy, the mean over seeds "
             f"± their standard deviation{' (one seed: no spread shown)' if len(seeds) == 1 else ''}. "
             f"Wall time (every invocation that trained or evaluated): {wall_s / 60:.1f} min.", "", to_markdown(table, titles), "",
             "## Diagnostics (mean over seeds; training averages over all steps, 'final' = last 10 steps)", "",
             diagnostics_markdown(results, titles), ""]
    finals = {row: entry["scores_final"] for row, entry in results.items() if entry.get("scores_final")}
    if finals:
        lines += ["## The best-validation checkpoint and the last step's, side by side (test accuracy, mean over seeds ± "
                  "their standard deviation)", "", best_and_final_markdown(results, titles), ""]
    if curves:
        lines += [f"## pass@k on {scale.benchmarks[0]}, the best-validation checkpoint, {scale.pass_at_k_n} samples a problem "
                  "(mean over seeds ± their standard deviation)", "", pass_at_k_markdown(curves, titles), ""]
    if wide:
        n, problems = scale.pass_at_k_wide
        if scale.wide_every_seed:
            lines += [f"## pass@k to k = {n}, the best-validation checkpoint of every seed, {n} samples on the first {problems} problems "
                      "(mean over seeds ± their standard deviation)", "",
                      pass_at_k_markdown({row: entry["pass_at_k_wide_seeds"] for row, entry in results.items()
                                          if entry.get("pass_at_k_wide_seeds")}, titles), ""]
        else:
            lines += [f"## pass@k to k = {n}: seed {seeds[0]} of each row, {n} samples on the first {problems} problems", "",
                      pass_at_k_markdown({row: [curve] for row, curve in wide.items()}, titles), ""]
    lines += ["## The paper's qualitative findings at this scale", ""]
    lines += [f"- **{f['verdict']}**: {f['claim']} — {f['evidence']}" for f in findings]
    lines += ["", "## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in figures]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def best_and_final_markdown(results: dict, titles: dict[str, str] | None = None, rows: tuple[tuple[str, str], ...] = ROWS) -> str:
    """Per row: the test accuracy of best/ and of final/ (mean ± seed sd), and their seed sd side by
    side: which choice ranks runs more stably."""
    titles = {**dict(rows), **(titles or {})}
    lines = ["| Method | seeds | best/ | final/ |", "|---|---|---|---|"]
    for row, _ in rows:
        entry = results.get(row)
        if not entry or not entry.get("scores_final"):
            continue
        best, final = (next(iter(entry[key].values())) for key in ("scores_best", "scores_final"))
        cells = []
        for values in (best, final):
            mean, std = mean_and_std(values)
            cells.append(f"{mean:.1f}" + (f" ± {std:.1f}" if std is not None else ""))
        lines.append(f"| {titles.get(row, row)} | {len(final)} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def diagnostics_markdown(results: dict, titles: dict[str, str] | None = None, rows: tuple[tuple[str, str], ...] = ROWS,
                         extra: tuple = ()) -> str:
    # The best validation accuracy, then one column per summary the registered diagnostics declare
    # and per ``extra`` one (a study's own, e.g. the gradient share); '—' where no seed logged it.
    columns = [("best_val_accuracy", "best val. (greedy)")] + [(s.name, s.title) for s in (*all_summaries(), *extra)]
    header = "| Method | " + " | ".join(title for _, title in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    titles = {**dict(rows), **(titles or {})}
    for row, _ in rows:
        if row not in results:
            continue
        cells = []
        for key, _ in columns:
            values = [d[key] for d in results[row]["diagnostics"] if d.get(key) is not None]
            cells.append("—" if not values else f"{sum(values) / len(values):.4g}")
        lines.append(f"| {titles[row]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pass_at_k_markdown(curves: dict[str, list[dict[str, float]]], titles: dict[str, str] | None = None,
                       rows: tuple[tuple[str, str], ...] = ROWS) -> str:
    """One line per row: pass@k (%) for every k its seeds share, mean ± seed standard deviation."""
    from asymrl.plots import pass_at_k_means

    titles = {**dict(rows), **(titles or {})}
    ordered = [row for row, _ in rows if row in curves]
    ks = pass_at_k_means([curve for row in ordered for curve in curves[row]])[0]
    lines = ["| Method | " + " | ".join(f"pass@{k}" for k in ks) + " |", "|" + "---|" * (len(ks) + 1)]
    for row in ordered:
        _, means, stds = pass_at_k_means(curves[row])
        cells = [f"{100 * m:.1f}" + (f" ± {100 * s:.1f}" if len(curves[row]) > 1 else "") for m, s in zip(means, stds)]
        lines.append(f"| {titles[row]} | " + " | ".join(cells[: len(ks)]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m asymrl.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="paper")
    parser.add_argument("--out", type=Path, default=None, help="default: runs/table1-<scale>")
    parser.add_argument("--rows", default="", help="comma-separated row ids (default: all 15)")
    parser.add_argument("--seeds", default="", help="comma-separated seeds (default: the scale's)")
    parser.add_argument("--steps", type=int, default=None, help="RL steps of every trained row (default: the scale's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override for every run, on top of the scale's (repeatable)")
    parser.add_argument("--eval-limit", type=int, default=None, help="evaluate on the first N problems only (quick checks)")
    parser.add_argument("--parallel", type=int, default=None, help="runs at a time (default: the scale's)")
    parser.add_argument("--gpus", default="", help="comma-separated GPU ids to spread runs over (one per run)")
    parser.add_argument("--launcher", default=None, help="training command before '--config', e.g. 'accelerate launch --config_file launch/gpu8_zero2.yaml train.py'")
    parser.add_argument("--publish", type=Path, default=None,
                        help="copy each finished run's results (not its checkpoints) under DIR/runs and build the page in DIR from "
                             "every run published there (e.g. docs/table1_collapse); without --seeds, add the scale's "
                             "seeds_per_invocation next seeds")
    parser.add_argument("--page-only", action="store_true",
                        help="with --publish: rebuild the page in DIR from the runs published there and train nothing "
                             "(after a sitting cut short: every run it finished was published as it finished)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan (and the paper-scale estimate) and stop")
    parser.add_argument("--yes", action="store_true", help="start without the scale's pause after the plan (paper: 10 seconds)")
    args = parser.parse_args(argv)

    scale = SCALES[args.scale]
    if args.launcher:
        scale = Scale(**{**scale.__dict__, "launcher": tuple(shlex.split(args.launcher))})
    changes = {}
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.eval_limit is not None:
        changes["eval_limit"] = args.eval_limit
    if args.set:
        try:
            changes["overrides"] = {**scale.overrides, **dict(parse_override(item) for item in args.set)}
        except ConfigError as error:
            parser.error(str(error))
    scale = Scale(**{**scale.__dict__, **changes})
    every_row = [row for row, _ in ROWS]
    rows, seeds = rows_and_seeds(parser, args, every_row, scale, scale.seeds)

    def write_published_page(wall_s: float, runs_done: int) -> None:
        # every row published there, not only this invocation's --rows: the page is the whole table's
        published, total_s = published_runs(args.publish, scale, every_row, wall_s, runs_done)
        print(f"wrote {write_outputs(collect(published, headline=scale.headline), scale, args.publish, published, total_s)} from every published run "
              f"(seeds {', '.join(map(str, sorted({run.seed for run in published})))})")

    if args.page_only:
        check_page_only(parser, args.publish, every_row)
        write_published_page(0.0, 0)
        return
    out = args.out or REPO / "runs" / f"table1-{scale.name}"
    gpus = [g for g in args.gpus.split(",") if g]
    parallel = args.parallel or (len(gpus) if gpus and scale.one_run_per_gpu else scale.parallel)

    try:
        runs = plan(scale, out, rows, seeds)
    except ConfigError as error:
        parser.error(str(error))
    todo = [r for r in runs if not r.done]
    print(f"Table 1, scale {scale.name} ({scale.budget_note}): {len(runs)} runs "
          f"({len(rows)} rows x {len(seeds)} seeds), {len(todo)} still to do, {parallel} at a time -> {out}")
    if scale.estimate_cost:
        hours, details = paper_gpu_hours([r for r in todo if r.config.train.total_steps != 0])
        per_run = sorted({(d["steps"], d["gpu_hours"]) for d in details.values()})
        print(f"Estimated cost of what is left: {hours:,.0f} GPU-hours on H100s for {len(details)} trained runs "
              f"({'; '.join(f'{steps} steps ~{h} GPU-h' for steps, h in per_run)} each) plus evaluation.\n"
              f"  Assumptions: {json.dumps(PAPER_ESTIMATE)}")
    if args.dry_run:
        for run in runs:
            print(f"  {run.name}: {'done' if run.done else 'to do'}  {run.directory}")
        return
    if todo and scale.needs_gpu and not _cuda_available():
        cpu_scales = " or ".join(f"--scale {name} (make reproduce-table1 SCALE={name})"
                                 for name, other in SCALES.items() if not other.needs_gpu)
        parser.error(f"scale {scale.name} trains on GPUs and none is visible here; "
                     f"use {cpu_scales or 'a scale with needs_gpu=False'} on CPUs, or --dry-run to see the plan")
    if todo and scale.confirm_seconds and not args.yes:
        print(f"Starting in {scale.confirm_seconds} seconds (Ctrl-C to stop; --yes skips this pause).")
        time.sleep(scale.confirm_seconds)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    on_done = publisher(runs, args.publish) if args.publish else None
    failures = run_all(todo, scale, parallel, gpus, on_done=on_done) if todo else []
    wall_s = record_invocation(out, time.time() - started, len(todo) - len(failures))
    report = write_outputs(collect(runs, headline=scale.headline), scale, out, runs, wall_s)
    print(f"wrote {report} (and table1.md / .csv / .tex, results.json, figures/)")
    if args.publish:
        write_published_page(time.time() - started, len(todo) - len(failures))
    if failures:
        print(f"{len(failures)} run(s) failed; re-run the same command to retry them:", file=sys.stderr)
        for run, error in failures:
            print(f"  {run.name}: {error.splitlines()[0]}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
