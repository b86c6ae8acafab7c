"""One typed config: dataclasses filled from YAML and ``key=value`` overrides, validated at start.

    train.py --config configs/toy_asymgrpo.yaml algorithm.alpha_pos=0.9 train.lr=3e-5
    train.py --help        # every key, its default and what it does

Errors name the key, the bad value and what is allowed (``unknown key 'algorithm.alpha_poss'; did you
mean 'algorithm.alpha_pos'?``); a YAML syntax error names the file and line. All problems are
reported at once. Values marked *derived* / *not found* in PAPER.md stay config values here.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml


def knob(default=None, help: str = "", **kwargs):
    """A config field with its one-line documentation."""
    if callable(default):  # list, or a lambda building a fresh mutable default
        return field(default_factory=default, metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class ModelConfig:
    path: str = knob("toy:tiny", "hub id or local dir; 'toy:tiny' / 'toy:small' = the embedded base policy")
    dtype: Literal["float32", "bfloat16", "float16"] = knob("float32", "weights and compute dtype")
    gradient_checkpointing: bool = knob(False, "recompute activations in backward")
    attn_implementation: Optional[str] = knob(None, "e.g. sdpa, flash_attention_2 (None: transformers' default)")
    trust_remote_code: bool = knob(False, "allow custom model code from the hub")
    lora_rank: Optional[int] = knob(None, "LoRA rank r (peft): train low-rank adapters only; None or 0: full fine-tuning")
    lora_alpha: float = knob(16.0, "LoRA alpha: a target's weight becomes W + (alpha / r) B A")
    lora_target_modules: list = knob(lambda: ["all-linear"], "layers given adapters: module names (q_proj, v_proj, ...) "
                                     "or all-linear (every linear layer but the LM head)")


@dataclass
class DataConfig:
    train: str = knob("toy", "training problems: 'toy', a known name (math_train), a JSONL path, or a hub id")
    train_split: Optional[str] = knob(None, "split of a hub dataset / of the toy task (default: train)")
    validation: str = knob("toy", "validation problems (same forms as data.train)")
    validation_split: Optional[str] = knob("validation", "split for validation")
    local_dir: Optional[str] = knob(None, "folder searched first for <name>.jsonl (default: ../shared/data if present)")
    problem_field: str = knob("problem", "field holding the problem text")
    answer_field: str = knob("answer", "field holding the reference answer")
    id_field: str = knob("id", "field holding a unique id")
    prompt_template: str = knob("{problem}\nPlease reason step by step, and put your final answer within \\boxed{}.",
                                "user message; {problem} is replaced (the Qwen-math prompt)")
    use_chat_template: bool = knob(True, "render through the tokenizer's chat template (False: raw prompt for base models)")
    enable_thinking: Optional[bool] = knob(None, "passed to the chat template (Qwen3: False = non-thinking mode)")
    max_prompt_tokens: int = knob(512, "prompts longer than this are dropped")
    validation_size: Optional[int] = knob(None, "use only the first N validation problems")


@dataclass
class RolloutConfig:
    backend: Literal["auto", "vllm", "transformers"] = knob("auto", "generation engine (auto: vLLM when importable)")
    group_size: int = knob(8, "G: rollouts per prompt")
    temperature: float = knob(1.0, "sampling temperature (**derived**: 1.0)")
    top_p: float = knob(1.0, "nucleus sampling")
    max_new_tokens: int = knob(4096, "max response length")
    stop: list = knob(list, "extra stop strings")
    gpu_memory_utilization: float = knob(0.5, "vLLM's share of GPU memory (colocated with training)")
    sleep_mode: bool = knob(False, "vLLM frees its KV cache during the update (GPU builds; a no-op on CPU)")
    static_cache: bool = knob(False, "transformers engine: static KV cache, which lets generate() compile its decode step on GPUs (on CPU it is slower: 8.7k vs 12.8k tok/s, tiny)")
    val_temperature: float = knob(0.0, "validation sampling temperature (0 = greedy)")
    val_max_new_tokens: Optional[int] = knob(None, "validation response length (default: max_new_tokens)")


@dataclass
class AlgorithmConfig:
    estimator: str = knob("asymgrpo", "advantage estimator (asymrl.advantages.available())")
    # Estimator parameters: null = the estimator's own default (asymgrpo 0.9 / 0.4, pos_only and
    # neg_only 0.5, grpo population std without epsilon, passk k = 4, flips 0.5).
    alpha_pos: Optional[float] = knob(None, "exponent of the positive channel (asymgrpo, pos_only)")
    alpha_neg: Optional[float] = knob(None, "exponent of the negative channel (asymgrpo, neg_only)")
    grpo_std: Optional[Literal["population", "sample"]] = knob(None, "GRPO: population std (analytic curve) or sample (verl)")
    grpo_eps: Optional[float] = knob(None, "GRPO: epsilon added to the std (verl: 1e-6)")
    passk_k: Optional[int] = knob(None, "Pass@K training: k (**not found**; <= G; default 4)")
    flip_alpha: Optional[float] = knob(None, "EntIncrease / EntDecrease exponent (default 0.5)")
    eps_low: float = knob(0.2, "lower clip (1 - eps_low)")
    eps_high: float = knob(0.2, "upper clip (1 + eps_high); clip-higher: 0.28 (**derived**)")
    dual_clip: Optional[float] = knob(None, "dual-clip constant c > 1 (None: off)")
    entropy_coef: float = knob(0.0, "entropy bonus coefficient (**not found**: sweep 1e-3, 3e-3, 5e-3)")
    entropy_adv_alpha: Optional[float] = knob(None, "entropy advantage alpha (Cheng et al.; 0.4 **derived**; None: off)")
    entropy_adv_kappa: float = knob(2.0, "entropy advantage kappa (**derived**)")
    loss_agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"] = knob("token-mean", "loss aggregation")
    loss_agg_constant: Optional[int] = knob(None, "Dr.GRPO's normaliser (default: rollout.max_new_tokens)")
    kl_coef: float = knob(0.0, "KL penalty to the initial policy (the paper uses none; > 0 keeps a frozen copy)")
    kl_estimator: Literal["k1", "k2", "k3"] = knob("k3", "per-token KL estimator")

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments for ``advantages.compute`` of the chosen estimator."""
        from asymrl import advantages

        candidates = {"alpha_pos": self.alpha_pos, "alpha_neg": self.alpha_neg, "std": self.grpo_std,
                      "eps": self.grpo_eps, "k": self.passk_k, "alpha": self.flip_alpha}
        accepted = advantages.parameters(self.estimator)
        return {name: value for name, value in candidates.items() if name in accepted and value is not None}


@dataclass
class TrainConfig:
    lr: float = knob(2e-6, "AdamW learning rate")
    weight_decay: float = knob(0.0, "AdamW weight decay")
    adam_betas: list = knob(lambda: [0.9, 0.999], "AdamW betas")
    lr_schedule: Literal["constant", "cosine", "linear"] = knob("constant", "lr schedule after warm-up")
    warmup_steps: int = knob(0, "linear warm-up, in optimizer steps")
    grad_clip: float = knob(1.0, "max gradient norm")
    prompts_per_step: int = knob(128, "prompts per RL step (x G rollouts)")
    mini_batch_prompts: int = knob(64, "prompts per optimizer step; divides prompts_per_step")
    micro_batch_size: int = knob(4, "rollouts per forward/backward pass")
    ppo_epochs: int = knob(1, "passes over each step's rollouts")
    total_steps: Optional[int] = knob(None, "RL steps (default: epochs over the training set)")
    epochs: int = knob(1, "epochs when total_steps is not set")
    seed: int = knob(42, "seed of data order, sampling and initialisation")
    output_dir: str = knob("runs/default", "run directory (metrics, TensorBoard, checkpoints, best/)")
    resume: str = knob("auto", "auto (latest checkpoint of output_dir), never, or a checkpoint path")
    save_every: int = knob(50, "checkpoint every N steps (0: never)")
    keep_last: int = knob(2, "checkpoints kept")
    max_wall_s: Optional[float] = knob(None, "stop cleanly (and checkpoint) after this many seconds")


@dataclass
class EvalConfig:
    every_steps: int = knob(10, "validate every N steps (0: never)")
    at_start: bool = knob(True, "validate before the first step")
    max_problems: Optional[int] = knob(None, "validate on the first N problems only")
    sampled_n: int = knob(0, "also report sampled accuracy (Avg@n at the rollout temperature); 0: off")


@dataclass
class LogConfig:
    trackers: list = knob(lambda: ["tensorboard"], "experiment trackers beside metrics.jsonl (accelerate's: tensorboard, "
                          "wandb, mlflow, ...); [] for none")
    project: str = knob("asymrl", "tracker project: the wandb project, the MLflow experiment, the TensorBoard subfolder")
    covariance_steps: int = knob(40, "log the covariance by accuracy for the first N steps")
    logprob_increment: bool = knob(True, "log the log-prob increment of correct rollouts (one extra forward pass)")
    progress_bar: bool = knob(True, "tqdm progress bar")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def loss_agg_constant(self) -> int:
        """Dr.GRPO's normaliser in effect: algorithm.loss_agg_constant, else the max response length."""
        return self.algorithm.loss_agg_constant or self.rollout.max_new_tokens

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


class ConfigError(ValueError):
    """Every problem of a config, one per line."""


# Keys that no longer exist, with what to write instead.
REPLACED_KEYS = {
    "log.tensorboard": "use log.trackers, a list (log.trackers=[tensorboard] is the default, log.trackers=[] logs to "
                       "metrics.jsonl only)",
}


def all_keys() -> dict[str, dataclasses.Field]:
    """Dotted key -> field, for every knob."""
    keys = {}
    for section in dataclasses.fields(Config):
        for item in dataclasses.fields(section.default_factory()):
            keys[f"{section.name}.{item.name}"] = item
    return keys


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """``value`` converted to the field's type, or a ValueError naming the key."""
    hints = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Union:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(key, value, next(h for h in hints if h is not type(None)))
    if origin is Literal:
        if value not in hints:
            raise ValueError(f"{key}: {value!r} is not allowed; choose one of {', '.join(map(str, hints))}")
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    if annotation in (int, float):
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ValueError(f"{key}: expected {annotation.__name__}, got {value!r}")
        if annotation is int:
            if float(number) != int(number):
                raise ValueError(f"{key}: expected an integer, got {value!r}")
            return int(number)
        return float(number)
    if annotation is list or origin is list:
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.startswith("[") else [v for v in value.split(",") if v]
        if not isinstance(value, list):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, (str, int, float)):
            raise ValueError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and f"{dotted}" not in all_keys():
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config as a flat ``{dotted key: value}``; syntax errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(error, 'problem', error)}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (model:, data:, ...), got {type(tree).__name__}")
    return _flatten(tree)


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. train.lr=3e-5")
    key, raw = text.split("=", 1)
    # The raw text is converted by the field's type (so "{problem}" stays a string, "3e-5" a float).
    return key.strip(), raw


def build_config(values: dict[str, Any]) -> Config:
    """A validated ``Config`` from flat dotted values; raises ConfigError listing every problem."""
    keys = all_keys()
    config = Config()
    errors = []
    for key, value in values.items():
        if key in REPLACED_KEYS:
            errors.append(f"{key} was replaced: {REPLACED_KEYS[key]}")
            continue
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            errors.append(f"unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
            continue
        section, name = key.split(".", 1)
        annotation = typing.get_type_hints(type(getattr(config, section)))[name]
        try:
            setattr(getattr(config, section), name, _coerce(key, value, annotation))
        except ValueError as error:
            errors.append(str(error))
    if not errors:
        errors = validate(config)
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
    return config


def validate(config: Config) -> list[str]:
    """Cross-field checks; each message names its key(s)."""
    from asymrl import advantages

    a, t, r, m = config.algorithm, config.train, config.rollout, config.model
    checks = [
        (a.estimator in advantages.available(), f"algorithm.estimator: {a.estimator!r} is not registered; choose one of {', '.join(advantages.available())}"),
        (0 <= a.eps_low < 1, f"algorithm.eps_low: must be in [0, 1), got {a.eps_low}"),
        (a.eps_high >= 0, f"algorithm.eps_high: must be >= 0, got {a.eps_high}"),
        (a.dual_clip is None or a.dual_clip > 1, f"algorithm.dual_clip: must be > 1 (or null), got {a.dual_clip}"),
        ((a.alpha_pos or 0) >= 0 and (a.alpha_neg or 0) >= 0, f"algorithm.alpha_pos / alpha_neg: must be >= 0, got {a.alpha_pos}, {a.alpha_neg}"),
        (r.group_size >= 2, f"rollout.group_size: must be >= 2, got {r.group_size}"),
        (r.group_size >= 3 or a.estimator not in ("ent_increase", "ent_decrease"), f"rollout.group_size: {a.estimator} needs G >= 3, got {r.group_size}"),
        (a.estimator != "passk" or 1 <= (a.passk_k or 4) <= r.group_size, f"algorithm.passk_k: must be in [1, G={r.group_size}], got {a.passk_k}"),
        (r.temperature > 0, f"rollout.temperature: must be > 0 for training rollouts, got {r.temperature}"),
        (0 < r.top_p <= 1, f"rollout.top_p: must be in (0, 1], got {r.top_p}"),
        (r.max_new_tokens > 0, f"rollout.max_new_tokens: must be > 0, got {r.max_new_tokens}"),
        (t.lr > 0, f"train.lr: must be > 0, got {t.lr}"),
        (a.kl_coef >= 0, f"algorithm.kl_coef: must be >= 0, got {a.kl_coef}"),
        (t.prompts_per_step > 0 and t.mini_batch_prompts > 0 and t.prompts_per_step % t.mini_batch_prompts == 0,
         f"train.mini_batch_prompts: must divide train.prompts_per_step ({t.prompts_per_step}), got {t.mini_batch_prompts}"),
        (t.micro_batch_size > 0, f"train.micro_batch_size: must be > 0, got {t.micro_batch_size}"),
        (t.ppo_epochs >= 1, f"train.ppo_epochs: must be >= 1, got {t.ppo_epochs}"),
        (t.resume in ("auto", "never") or Path(t.resume).exists(), f"train.resume: 'auto', 'never' or an existing checkpoint, got {t.resume!r}"),
        (len(t.adam_betas) == 2, f"train.adam_betas: expected two numbers, got {t.adam_betas}"),
        ((m.lora_rank or 0) >= 0, f"model.lora_rank: must be >= 0 (0 or null: no LoRA), got {m.lora_rank}"),
        (m.lora_alpha > 0, f"model.lora_alpha: must be > 0, got {m.lora_alpha}"),
        (not m.lora_rank or (m.lora_target_modules and all(isinstance(n, str) for n in m.lora_target_modules)),
         f"model.lora_target_modules: expected a non-empty list of module names (or all-linear), got {m.lora_target_modules}"),
    ]
    return [message for ok, message in checks if not ok] + tracker_problems(config.log.trackers)


def tracker_problems(names: list) -> list[str]:
    """log.trackers must name accelerate's trackers (its own, or classes registered with
    ``accelerate.tracking.register_tracker_class``), the built-in ones with their package installed:
    accelerate would otherwise drop a missing one silently."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers
    from accelerate.utils import LoggerType

    missing = {tracker.value for tracker in LoggerType} - {str(tracker) for tracker in get_available_trackers()}
    problems = []
    for name in names:
        if name not in LOGGER_TYPE_TO_CLASS:
            problems.append(f"log.trackers: {name!r} is not a tracker; choose from {', '.join(sorted(LOGGER_TYPE_TO_CLASS))}")
        elif name in missing:
            package = f"'asymrl[{name}]'" if name in ("wandb", "mlflow") else name
            problems.append(f"log.trackers: {name!r} needs its package, which is not installed: pip install {package}")
    return problems


def check_world_size(config: Config, world_size: int) -> None:
    """Batch shapes must split evenly over ranks and micro-batches."""
    t, G = config.train, config.rollout.group_size
    rows = t.mini_batch_prompts * G
    problems = []
    if t.prompts_per_step % world_size:
        problems.append(f"train.prompts_per_step ({t.prompts_per_step}) must be divisible by the number of processes ({world_size})")
    elif (rows // world_size) % t.micro_batch_size or rows % world_size:
        problems.append(f"train.micro_batch_size ({t.micro_batch_size}) must divide the per-process mini-batch "
                        f"(mini_batch_prompts x G / processes = {rows} / {world_size})")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def help_text() -> str:
    lines = ["keys (set in YAML sections or as key=value):"]
    for key, item in all_keys().items():
        default = item.default if item.default is not dataclasses.MISSING else item.default_factory()
        lines.append(f"  {key} = {default!r}\n      {item.metadata.get('help', '')}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> Config:
    """``--config FILE`` (optional) then ``key=value`` overrides; ``--help`` lists every key."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        print(help_text())
        raise SystemExit(0)
    values: dict[str, Any] = {}
    rest = []
    while argv:
        item = argv.pop(0)
        if item == "--config":
            if not argv:
                raise ConfigError("--config needs a file")
            values.update(load_yaml(argv.pop(0)))
        elif item.startswith("--config="):
            values.update(load_yaml(item.split("=", 1)[1]))
        else:
            rest.append(item)
    for item in rest:
        key, value = parse_override(item)
        values[key] = value
    return build_config(values)
