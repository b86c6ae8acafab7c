"""One typed config: dataclasses filled from YAML and ``key=value`` overrides, validated at start.

    train.py --config configs/toy_asymgrpo.yaml algorithm.alpha_pos=0.9 train.lr=3e-5
    train.py rollout.backend=vllm rollout.vllm.sleep_mode=true     # a nested section: YAML rollout: vllm: ...
    train.py --help        # every key, its default and what it does

Errors name the key, the bad value and what is allowed (``unknown key 'algorithm.alpha_poss'; did you
mean 'algorithm.alpha_pos'?``); a YAML syntax error names the file and line. All problems are
reported at once. The paper's values that are a best reading of its text (marked *derived*) or that it
does not give (*not found*) stay config values here, never constants.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import inspect
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Callable, Iterator, Literal, Optional

import yaml

from asymrl.tasks import MATH_PROMPT


def knob(default=None, help: str = "", **kwargs):
    """A config field with its one-line documentation."""
    if callable(default):  # list, or a lambda building a fresh mutable default
        return field(default_factory=default, metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


def sections(factory: Callable[[], dict]):
    """A field holding named sub-sections (name -> dataclass), each keyed directly under the parent:
    ``rollout.vllm.sleep_mode`` is ``config.rollout.engine_options["vllm"].sleep_mode``."""
    return field(default_factory=factory, metadata={"sections": True})


@dataclass
class ModelConfig:
    path: str = knob("toy:tiny", "hub id or local dir; 'toy:tiny' / 'toy:paths' / 'toy:small' = an embedded base policy "
                                 "(default: the task's base policy, asymrl.tasks; the math task has none)")
    dtype: Literal["float32", "bfloat16", "float16"] = knob("float32", "weights and compute dtype")
    gradient_checkpointing: bool = knob(False, "recompute activations in backward")
    attn_implementation: Optional[str] = knob(None, "e.g. sdpa, sdpa_gqa, flash_attention_2 (None: transformers' default, with sdpa_gqa for sdpa: asymrl.attention)")
    trust_remote_code: bool = knob(False, "allow custom model code from the hub")
    lora_rank: Optional[int] = knob(None, "LoRA rank r (peft): train low-rank adapters only; None or 0: full fine-tuning")
    lora_alpha: float = knob(16.0, "LoRA alpha: a target's weight becomes W + (alpha / r) B A")
    lora_target_modules: list = knob(lambda: ["all-linear"], "layers given adapters: module names (q_proj, v_proj, ...) "
                                     "or all-linear (every linear layer but the LM head)")


@dataclass
class DataConfig:
    task: Optional[str] = knob(None, "the task (asymrl.tasks: its reward, prompt template, answer length, base policy): a registered "
                                     "name or module:name (default: the task data.train names; math for any other dataset)")
    train: str = knob("toy", "training problems: a task's split ('toy', 'paths', 'paths:train'), a known name (math_train), "
                             "a JSONL / JSON / Parquet path, or a hub id")
    train_split: Optional[str] = knob(None, "split of a hub dataset / of the toy task (default: train)")
    validation: str = knob("toy", "validation problems (same forms as data.train; default: the task's: toy, paths, math500)")
    validation_split: Optional[str] = knob("validation", "split for validation (default: the task's)")
    local_dir: Optional[str] = knob(None, "folder searched first for <name>.jsonl (default: $ASYMRL_DATA_DIR when set; else the hub)")
    problem_field: str = knob("problem", "field holding the problem text")
    answer_field: str = knob("answer", "field holding the reference answer")
    id_field: str = knob("id", "field holding a unique id")
    prompt_template: str = knob(MATH_PROMPT, "user message; {problem} is replaced (default: the task's; the math task's is "
                                             "the Qwen-math prompt)")
    use_chat_template: bool = knob(True, "render through the tokenizer's chat template (False: raw prompt for base models; "
                                         "default: the task's)")
    enable_thinking: Optional[bool] = knob(None, "passed to the chat template (Qwen3: False = non-thinking mode)")
    max_prompt_tokens: int = knob(512, "training prompts longer than this are dropped (default: the task's)")


@dataclass
class RewardConfig:
    name: str = knob("math", "reward: a registered name (asymrl.reward.available(); math = the verifier) or module:function "
                             "(default: the task's, with its kwargs)")
    kwargs: dict = knob(dict, "keyword arguments of the reward, checked against its signature (reward.kwargs.NAME=VALUE)")
    timeout_s: float = knob(2.0, "time limit per case; a case that overruns is killed, scores 0 and is counted (reward/timeouts)")
    num_workers: Optional[int] = knob(None, "reward worker processes (default: min(4, CPU count))")
    memory_mb: int = knob(2048, "address-space cap of each reward worker, in MiB")


def _default_engine_options() -> dict:
    """One options section per registered rollout engine, its defaults: ``rollout.<engine>.<option>``."""
    from asymrl import rollout

    clash = set(rollout.available()) & {item.name for item in dataclasses.fields(RolloutConfig)}
    if clash:
        raise ValueError(f"rollout engines {sorted(clash)} are named like rollout.* keys; register them under other names")
    return {name: rollout.get(name).Options() for name in rollout.available()}


@dataclass
class RolloutConfig:
    backend: str = knob("auto", "rollout engine: auto (vLLM on a CUDA device when importable, else transformers: on a CPU vLLM is "
                                         "slower, asymrl.rollout.resolve) or a registered name (asymrl.rollout.available())")
    group_size: int = knob(8, "G: rollouts per prompt")
    temperature: float = knob(1.0, "sampling temperature (**derived**: 1.0)")
    top_p: float = knob(1.0, "nucleus sampling")
    max_new_tokens: int = knob(4096, "max response length (default: the task's)")
    stop: list = knob(list, "extra stop strings")
    val_temperature: float = knob(0.0, "validation sampling temperature (0 = greedy)")
    val_max_new_tokens: Optional[int] = knob(None, "validation response length (default: max_new_tokens)")
    engine_dtype: Optional[Literal["float32", "bfloat16", "float16"]] = knob(
        None, "dtype the engine samples in (None: model.dtype); e.g. bfloat16 beside a float32 trainer, as vLLM in bf16 "
              "beside fp32 master weights: the gap shows in mismatch/* and algorithm.rollout_correction corrects it")
    # Each engine's own options (its Options dataclass), keyed rollout.<engine>.<option>.
    engine_options: dict = sections(_default_engine_options)


@dataclass
class AlgorithmConfig:
    estimator: str = knob("asymgrpo", "advantage estimator: a registered name (asymrl.advantages.available()) or module:function")
    estimator_kwargs: dict = knob(dict, "the estimator's keyword parameters by name, checked against its signature and "
                                        "converted by their annotations (YAML {scale: 0.25}, or algorithm.estimator_kwargs.scale=0.25)")
    # The paper's estimator parameters under their own keys, each for the estimators of
    # LEGACY_ESTIMATOR_KEYS: null = the estimator's own default (asymgrpo 0.9 / 0.4, pos_only and
    # neg_only 0.5, grpo population std without epsilon, passk k = 4, flips 0.5).
    alpha_pos: Optional[float] = knob(None, "exponent of the positive channel (asymgrpo, pos_only)")
    alpha_neg: Optional[float] = knob(None, "exponent of the negative channel (asymgrpo, neg_only)")
    alpha_schedule: Literal["constant", "linear", "cosine", "entropy_target"] = knob(
        "constant", "adaptive AsymGRPO (asymrl.modulation): constant; linear / cosine from the estimator's alpha_pos / "
                    "alpha_neg to alpha_pos_end / alpha_neg_end; entropy_target: a controller moves alpha_pos to hold target_entropy")
    alpha_pos_end: Optional[float] = knob(None, "linear / cosine schedule: alpha_pos at the last step (None: constant)")
    alpha_neg_end: Optional[float] = knob(None, "linear / cosine schedule: alpha_neg at the last step (None: constant)")
    target_entropy: Optional[float] = knob(None, "entropy_target: the mean token entropy (entropy/all) to hold")
    alpha_controller_rate: float = knob(1.0, "entropy_target: change of alpha_pos per step per unit of entropy below target")
    alpha_pos_range: list = knob(lambda: [0.0, 2.0], "entropy_target: the controller keeps alpha_pos within [low, high]")
    grpo_std: Optional[Literal["population", "sample"]] = knob(None, "GRPO: population std (analytic curve) or sample (verl)")
    grpo_eps: Optional[float] = knob(None, "GRPO: epsilon added to the std (verl: 1e-6); passk's eps: estimator_kwargs.eps")
    passk_k: Optional[int] = knob(None, "Pass@K training: k (**not found**; <= G; default 4)")
    flip_alpha: Optional[float] = knob(None, "EntIncrease / EntDecrease exponent (default 0.5)")
    policy_loss: str = knob("ppo", "per-token policy-loss variant: a registered name (asymrl.loss.POLICY_LOSSES; ppo = the clipped surrogate) or module:function")
    policy_loss_kwargs: dict = knob(dict, "the variant's parameters beyond the clip bounds, checked against its signature")
    dynamic_sampling: bool = knob(False, "DAPO's dynamic sampling: drop groups whose rewards do not vary and generate "
                                         "fresh prompts until the step's batch is full (or max_generation_rounds)")
    max_generation_rounds: int = knob(4, "dynamic sampling: rounds of generation per step at most (then zero-variance groups fill the batch)")
    overlong_buffer: Optional[int] = knob(None, "DAPO's soft overlong punishment (asymrl.overlong): the last N tokens before "
                                                "rollout.max_new_tokens cost up to overlong_penalty (None: off)")
    overlong_penalty: float = knob(1.0, "the penalty's scale, added to the rollout's advantage (correctness alone drives the estimator)")
    mask_truncated: bool = knob(False, "overlong filtering (DAPO): responses cut at rollout.max_new_tokens carry no loss")
    top_entropy_quantile: Optional[float] = knob(None, "the 80/20 rule (Wang et al. 2025): only this highest-entropy share of each step's "
                                                       "response tokens carries the policy gradient, e.g. 0.2 (None: every token)")
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
    rollout_correction: Literal["none", "tis", "mask"] = knob(
        "none", "engine-vs-trainer correction of the policy gradient (asymrl.rollout_correction): tis = weight by "
                "min(pi_old / pi_engine, cap); mask = drop tokens or responses whose ratio leaves [1/cap, cap]")
    rollout_correction_level: Literal["token", "sequence"] = knob("token", "ratio per token, or per response (product over its tokens)")
    rollout_correction_cap: float = knob(2.0, "the cap C of tis / the bound of mask (> 1)")

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments for ``advantages.compute`` of the chosen estimator: the legacy keys set
        for it (LEGACY_ESTIMATOR_KEYS), then ``estimator_kwargs``."""
        legacy = {parameter: getattr(self, key) for key, (parameter, estimators) in LEGACY_ESTIMATOR_KEYS.items()
                  if self.estimator in estimators and getattr(self, key) is not None}
        return {**legacy, **self.estimator_kwargs}


# algorithm.<key> -> (parameter, the estimators it is that parameter of). The paper's parameters kept
# their own keys before algorithm.estimator_kwargs existed; each sets only its estimators' parameter
# (grpo_eps is grpo's eps, not passk's), and setting one for another estimator is an error.
LEGACY_ESTIMATOR_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "alpha_pos": ("alpha_pos", ("asymgrpo", "pos_only")),
    "alpha_neg": ("alpha_neg", ("asymgrpo", "neg_only")),
    "grpo_std": ("std", ("grpo",)),
    "grpo_eps": ("eps", ("grpo",)),
    "passk_k": ("k", ("passk",)),
    "flip_alpha": ("alpha", ("ent_increase", "ent_decrease")),
}


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
    micro_batch_size: int = knob(4, "rollouts per forward/backward pass (fixed-count mode)")
    max_tokens_per_micro_batch: Optional[int] = knob(None, "token-budget mode: micro-batches of length-sorted rollouts whose padded size (rows x longest) stays within this many tokens, as many on every rank (None: micro_batch_size rows each)")
    packing: bool = knob(False, "padding-free: each micro-batch's sequences packed into rows as wide as its longest, position ids "
                                "restarting per sequence (transformers attends within each: flash-attention varlen on GPUs, "
                                "a block-diagonal mask for sdpa / eager)")
    ppo_epochs: int = knob(1, "passes over each step's rollouts")
    old_logprobs_from_update: bool = knob(True, "the first mini-batch's old log-probs and entropies from the update's own first "
                                                "forward, which runs at the sampling policy (no separate pass over those rows; "
                                                "equal up to floating point). Not where they are read before the update "
                                                "(entropy advantage, rollout correction, 80/20 rule, mask_truncated) or where the model has dropout: recomputed there")
    total_steps: Optional[int] = knob(None, "RL steps (default: epochs over the training set)")
    epochs: int = knob(1, "epochs when total_steps is not set")
    seed: int = knob(42, "seed of data order, sampling and initialisation")
    output_dir: str = knob("runs/default", "run directory (metrics, TensorBoard, checkpoints, best/)")
    resume: str = knob("auto", "auto (latest checkpoint of output_dir), never, or a checkpoint path")
    save_every: int = knob(50, "checkpoint every N steps (0: never)")
    keep_last: int = knob(2, "checkpoints kept")
    save_final: bool = knob(False, "also write the last step's policy to <output_dir>/final (a transformers model directory, as best/)")
    max_wall_s: Optional[float] = knob(None, "stop cleanly (and checkpoint) after this many seconds")


@dataclass
class EvalConfig:
    every_steps: int = knob(10, "validate every N steps (0: never)")
    at_start: bool = knob(True, "validate before the first step")
    max_problems: Optional[int] = knob(None, "validate on the first N validation problems only")
    sampled_n: int = knob(0, "also report sampled accuracy (Avg@n at the rollout temperature); 0: off")


@dataclass
class LogConfig:
    trackers: list = knob(lambda: ["tensorboard"], "experiment trackers beside metrics.jsonl (accelerate's: tensorboard, "
                          "wandb, mlflow, ...); [] for none")
    project: str = knob("asymrl", "tracker project: the wandb project, the MLflow experiment, the TensorBoard subfolder")
    covariance_steps: int = knob(40, "the covariance-by-accuracy figure averages the first N steps (appendix B); it is logged every step")
    logprob_increment: bool = knob(True, "log the log-prob increment of correct rollouts (one extra forward pass)")
    logprob_increment_every: int = knob(1, "measure the log-prob increment every N steps only (its pass is ~15% of a small step)")
    sign_grad_norm_every: int = knob(0, "every N steps, the norms of the policy gradient from positive and from negative "
                                     "rollouts, their share and cosine (one forward, two backward passes; 0: never; not under ZeRO-3)")
    progress_bar: bool = knob(True, "tqdm progress bar")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
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
        """Nested as the YAML it is read from (``rollout: vllm: sleep_mode: ...``)."""
        tree: dict = {}
        for key, owner, item in _knobs(self):
            *path, name = key.split(".")
            branch = tree
            for part in path:
                branch = branch.setdefault(part, {})
            branch[name] = copy.deepcopy(getattr(owner, item.name))
        return tree

    def save(self, path: Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


class ConfigError(ValueError):
    """Every problem of a config, one per line."""


# Keys that moved (into an engine's own section, or merged with another); the error names the new key.
MOVED_KEYS = {
    "rollout.gpu_memory_utilization": "rollout.vllm.gpu_memory_utilization",
    "rollout.sleep_mode": "rollout.vllm.sleep_mode",
    "rollout.static_cache": "rollout.transformers.static_cache",
    "data.validation_size": "eval.max_problems",
}


# Keys that no longer exist, with what to write instead.
REPLACED_KEYS = {
    "log.tensorboard": "use log.trackers, a list (log.trackers=[tensorboard] is the default, log.trackers=[] logs to "
                       "metrics.jsonl only)",
}


def _knobs(node: Any, prefix: str = "") -> Iterator[tuple[str, Any, dataclasses.Field]]:
    """``(dotted key, the dataclass holding it, its field)`` for every knob under ``node``.

    A field holding a dataclass is a section named after the field; a ``sections`` field holds one
    section per entry, named after the entry (``rollout.vllm.*``)."""
    for item in dataclasses.fields(node):
        value = getattr(node, item.name)
        if item.metadata.get("sections"):
            for name, section in value.items():
                yield from _knobs(section, f"{prefix}{name}.")
        elif dataclasses.is_dataclass(value):
            yield from _knobs(value, f"{prefix}{item.name}.")
        else:
            yield f"{prefix}{item.name}", node, item


def all_keys() -> dict[str, dataclasses.Field]:
    """Dotted key -> field, for every knob (nested sections included)."""
    return {key: item for key, _, item in _knobs(Config())}


@functools.cache
def _type_hints(section: type) -> dict[str, Any]:
    """A config section's resolved field types (``typing.get_type_hints`` re-evaluates every string
    annotation on each call: 0.2 s per key_types() uncached, paid by every config built)."""
    return typing.get_type_hints(section)


def key_types() -> dict[str, Any]:
    """Dotted key -> its field's type, for every knob."""
    return {key: _type_hints(type(owner))[item.name] for key, owner, item in _knobs(Config())}


def mapping_keys() -> list[str]:
    """The knobs that are mappings (``algorithm.estimator_kwargs``): their entries are set one by
    one as ``<key>.<entry>``, so a YAML file and ``key=value`` overrides merge entry by entry."""
    return [key for key, annotation in key_types().items() if annotation is dict or typing.get_origin(annotation) is dict]


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """``value`` converted to the field's type, or a ValueError naming the key."""
    hints = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is UnionType:  # Optional[X], X | None
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
    if annotation is dict or origin is dict:
        if isinstance(value, str):  # a whole mapping on the command line: key={scale: 0.25}
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                raise ValueError(f"{key}: expected a mapping such as {{name: value}}, got {value!r}") from None
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping such as {{name: value}}, got {value!r}")
        return dict(value)
    if annotation is str:
        if not isinstance(value, (str, int, float)):
            raise ValueError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def _flatten(tree: dict, keys: dict, mappings: list[str], prefix: str = "") -> dict[str, Any]:
    """YAML sections (nested to any depth) as dotted keys; a mapping knob's entries become
    ``<key>.<entry>`` (so files and overrides merge entry by entry)."""
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted in mappings:
            flat.update({f"{dotted}.{entry}": item for entry, item in value.items()})
        elif isinstance(value, dict) and dotted not in keys:
            flat.update(_flatten(value, keys, mappings, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config as a flat ``{dotted key: value}``; syntax errors name the file and line.

    A top-level ``inherit: other.yaml`` (a path relative to this file) loads that file first and lays
    this file's values over it, so a variant holds only what it changes (``configs/table1/``).
    """
    return _load_yaml(Path(path), chain=())


def _load_yaml(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
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
    values = {}
    if "inherit" in tree:
        parent = tree.pop("inherit")
        if not isinstance(parent, str):
            raise ConfigError(f"{path}: inherit: expected the path of a YAML file, got {parent!r}")
        parent_path = path.parent / parent
        chain = (*chain, path)
        if parent_path.resolve() in {link.resolve() for link in chain}:
            raise ConfigError(f"{path}: inherit: cycle {' -> '.join(map(str, (*chain, parent_path)))}")
        if not parent_path.is_file():
            raise ConfigError(f"{path}: inherit: {parent_path} does not exist")
        values = _load_yaml(parent_path, chain)
    values.update(_flatten(tree, all_keys(), mapping_keys()))
    return values


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. train.lr=3e-5")
    key, raw = text.split("=", 1)
    # The raw text is converted by the field's type (so "{problem}" stays a string, "3e-5" a float).
    return key.strip(), raw


def build_config(values: dict[str, Any]) -> Config:
    """A validated ``Config`` from flat dotted values; raises ConfigError listing every problem."""
    mappings = mapping_keys()
    config = Config()
    knobs = {key: (owner, item) for key, owner, item in _knobs(config)}
    errors = []
    for key, value in values.items():
        if key in REPLACED_KEYS:
            errors.append(f"{key} was replaced: {REPLACED_KEYS[key]}")
            continue
        if key in MOVED_KEYS:
            errors.append(f"{key}: moved to {MOVED_KEYS[key]}")
            continue
        mapping = next((m for m in mappings if key.startswith(m + ".")), None)
        if key not in knobs and mapping is not None:  # one entry of a mapping: algorithm.estimator_kwargs.scale
            owner, item = knobs[mapping]
            getattr(owner, item.name)[key[len(mapping) + 1:]] = value
            continue
        if key not in knobs:
            close = difflib.get_close_matches(key, knobs, n=1)
            errors.append(f"unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
            continue
        owner, item = knobs[key]
        annotation = _type_hints(type(owner))[item.name]
        try:
            setattr(owner, item.name, _coerce(key, value, annotation))
        except ValueError as error:
            errors.append(str(error))
    task_problems = apply_task(config, given=set(values)) if not errors else []
    errors += check_estimator_params(config.algorithm) + check_policy_loss_params(config.algorithm)
    if not errors:
        errors = task_problems + check_reward_params(config.reward) + validate(config)
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
    return config


# What a task decides (asymrl.tasks.Task field -> config key), where the config does not set it.
TASK_KEYS = {
    "prompt_template": "data.prompt_template",
    "use_chat_template": "data.use_chat_template",
    "max_prompt_tokens": "data.max_prompt_tokens",
    "max_new_tokens": "rollout.max_new_tokens",
    "validation": "data.validation",
    "validation_split": "data.validation_split",
}


def apply_task(config: Config, given: set[str]) -> list[str]:
    """Fill what the run's task decides (``asymrl.tasks``) wherever ``given`` (the keys the YAML and
    the overrides set) does not: the reward and its kwargs, prompt template, chat-template use, prompt
    and answer lengths, base policy; ``data.task`` records the task's name. Returns problems, each
    naming its key: an unknown task, or a validation set of another task than the run's."""
    from asymrl import tasks

    data = config.data
    try:
        task = tasks.task_of(data.train, data.task)
    except KeyError as error:
        return [f"data.task: {error.args[0]}"]
    owners = {"data": data, "rollout": config.rollout}
    for attribute, key in TASK_KEYS.items():
        if key not in given:
            section, name = key.split(".")
            setattr(owners[section], name, getattr(task, attribute))
    problems = []
    for key, name in (("data.train", data.train), ("data.validation", data.validation)):
        named, _ = tasks.parse_data_name(name)
        if named is not None and named.name != task.name:
            problems.append(f"{key}: {name!r} is the {named.name} task's data, but the run's task is {task.name} "
                            f"(data.task={data.task!r}, data.train={data.train!r}): its reward and prompt would score it")
    if "reward.name" not in given:
        config.reward.name = task.reward
        config.reward.kwargs = {**task.reward_kwargs, **config.reward.kwargs}
    if "model.path" not in given:
        if task.base_policy is None:
            problems.append(f"model.path: the {task.name} task has no base policy of its own; name a model (a hub id or a folder)")
        else:
            config.model.path = task.base_policy
    data.task = data.task or task.name
    return problems


def _yaml_scalar(value: Any) -> Any:
    """A command-line string read as YAML would read it (``0.25`` a float, ``true`` a bool), else as is."""
    if not isinstance(value, str):
        return value
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def check_kwargs(key: str, kwargs: dict, registry, name: str) -> tuple[dict, list[str]]:
    """``kwargs`` of the registered ``name`` checked against its signature and converted by each
    parameter's type; returns (converted kwargs, errors naming ``<key>.<parameter>``)."""
    types = registry.parameter_types(name)
    accepted = f"it takes {', '.join(types)}" if types else "it takes no parameters"
    converted, errors = {}, []
    for parameter, value in kwargs.items():
        if parameter not in types:
            close = difflib.get_close_matches(parameter, types, n=1)
            errors.append(f"{key}.{parameter}: {registry.kind} {name!r} has no parameter {parameter!r}; {accepted}"
                          + (f"; did you mean {close[0]!r}?" if close else ""))
        elif types[parameter] is Any:  # nothing says its type: a command-line string is read as YAML
            converted[parameter] = _yaml_scalar(value)
        else:
            try:
                converted[parameter] = _coerce(f"{key}.{parameter}", value, types[parameter])
            except ValueError as error:
                errors.append(str(error))
    return converted, errors


def _missing(key: str, registry, name: str, given: dict) -> list[str]:
    return [f"{key}.{p}: {registry.kind} {name!r} needs it (no default)"
            for p, default in registry.parameters(name).items() if default is inspect.Parameter.empty and p not in given]


def check_estimator_params(algorithm: AlgorithmConfig) -> list[str]:
    """Check the estimator's parameters against its signature, converting ``estimator_kwargs``
    values by their annotations in place; each message names its key."""
    from asymrl.advantages import ESTIMATORS

    if ESTIMATORS.problem(algorithm.estimator):
        return []  # validate() names the estimator
    name = algorithm.estimator
    types = ESTIMATORS.parameter_types(name)
    converted, errors = check_kwargs("algorithm.estimator_kwargs", algorithm.estimator_kwargs, ESTIMATORS, name)
    algorithm.estimator_kwargs = converted
    for field_name, (parameter, estimators) in LEGACY_ESTIMATOR_KEYS.items():
        value = getattr(algorithm, field_name)
        if value is None:
            continue
        if name not in estimators:
            accepted = f"it takes {', '.join(types)}" if types else "it takes no parameters"
            errors.append(f"algorithm.{field_name}: is the {parameter!r} of {', '.join(estimators)}, not a parameter of "
                          f"estimator {name!r}" + (f"; set algorithm.estimator_kwargs.{parameter} for its {parameter!r}"
                                                   if parameter in types else f" ({accepted})"))
        elif parameter in converted and converted[parameter] != value:
            errors.append(f"algorithm.{field_name} = {value!r} and algorithm.estimator_kwargs.{parameter} = "
                          f"{converted[parameter]!r} disagree; set one of them")
    return errors + _missing("algorithm.estimator_kwargs", ESTIMATORS, name, algorithm.estimator_params())


def check_policy_loss_params(algorithm: AlgorithmConfig) -> list[str]:
    """``algorithm.policy_loss_kwargs`` against the chosen variant's signature, converted in place."""
    from asymrl.loss import POLICY_LOSSES

    if POLICY_LOSSES.problem(algorithm.policy_loss):
        return []  # validate() names the variant
    key, name = "algorithm.policy_loss_kwargs", algorithm.policy_loss
    algorithm.policy_loss_kwargs, errors = check_kwargs(key, algorithm.policy_loss_kwargs, POLICY_LOSSES, name)
    return errors + _missing(key, POLICY_LOSSES, name, algorithm.policy_loss_kwargs)


def check_reward_params(reward: RewardConfig) -> list[str]:
    """``reward.kwargs`` against the reward's signature (after ``response, example``), converted in
    place; each problem names ``reward.name`` or ``reward.kwargs.<name>``."""
    from asymrl.reward import REWARDS

    try:
        fn = REWARDS.get(reward.name)
    except (KeyError, ImportError, AttributeError) as error:
        return [f"reward.name: {error.args[0] if error.args else error}"]
    positional = [p for p in inspect.signature(fn).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2:
        return [f"reward.name: {reward.name} must take (response, example, **kwargs)"]
    reward.kwargs, errors = check_kwargs("reward.kwargs", reward.kwargs, REWARDS, reward.name)
    return errors + _missing("reward.kwargs", REWARDS, reward.name, reward.kwargs)


def registry_checks(key: str, registry, name: str) -> list[tuple[bool, str]]:
    """``validate``'s check that ``name`` is registered in ``registry`` or is an importable
    ``module:function``, with a message naming ``key``."""
    problem = registry.problem(name)
    if problem is None:
        return []
    if ":" in name:
        return [(False, f"{key}: {problem}")]
    return [(False, f"{key}: {name!r} is not registered; choose one of {', '.join(registry.available())} (or module:function)")]


def validate(config: Config) -> list[str]:
    """Cross-field checks; each message names its key(s)."""
    from asymrl import advantages, rollout
    from asymrl.data import FILE_SUFFIXES
    from asymrl.loss import POLICY_LOSSES

    a, t, r, m = config.algorithm, config.train, config.rollout, config.model
    passk_k = a.estimator_params().get("k", advantages.parameters("passk")["k"]) if a.estimator == "passk" else None
    passk_key = "algorithm.estimator_kwargs.k" if "k" in a.estimator_kwargs else "algorithm.passk_k"
    checks = [
        *registry_checks("algorithm.estimator", advantages.ESTIMATORS, a.estimator),
        *registry_checks("algorithm.policy_loss", POLICY_LOSSES, a.policy_loss),
        (r.backend in rollout.choices(), f"rollout.backend: {r.backend!r} is not registered; choose one of {', '.join(rollout.choices())}"),
        (0 <= a.eps_low < 1, f"algorithm.eps_low: must be in [0, 1), got {a.eps_low}"),
        (a.eps_high >= 0, f"algorithm.eps_high: must be >= 0, got {a.eps_high}"),
        (a.dual_clip is None or a.dual_clip > 1, f"algorithm.dual_clip: must be > 1 (or null), got {a.dual_clip}"),
        ((a.alpha_pos or 0) >= 0 and (a.alpha_neg or 0) >= 0, f"algorithm.alpha_pos / alpha_neg: must be >= 0, got {a.alpha_pos}, {a.alpha_neg}"),
        (r.group_size >= 2, f"rollout.group_size: must be >= 2, got {r.group_size}"),
        (r.group_size >= 3 or a.estimator not in ("ent_increase", "ent_decrease"), f"rollout.group_size: {a.estimator} needs G >= 3, got {r.group_size}"),
        (passk_k is None or 1 <= passk_k <= r.group_size, f"{passk_key}: must be in [1, G={r.group_size}], got {passk_k}"),
        (r.temperature > 0, f"rollout.temperature: must be > 0 for training rollouts, got {r.temperature}"),
        (0 < r.top_p <= 1, f"rollout.top_p: must be in (0, 1], got {r.top_p}"),
        (r.max_new_tokens > 0, f"rollout.max_new_tokens: must be > 0, got {r.max_new_tokens}"),
        *[(not name.endswith(FILE_SUFFIXES) or Path(name).exists(), f"data.{key}: {name}: no such file (from {Path.cwd()})")
          for key, name in (("train", config.data.train), ("validation", config.data.validation))],
        (t.lr > 0, f"train.lr: must be > 0, got {t.lr}"),
        (a.kl_coef >= 0, f"algorithm.kl_coef: must be >= 0, got {a.kl_coef}"),
        *modulation_problems(a),
        (a.max_generation_rounds >= 1, f"algorithm.max_generation_rounds: must be >= 1, got {a.max_generation_rounds}"),
        (a.overlong_buffer is None or 0 < a.overlong_buffer <= r.max_new_tokens,
         f"algorithm.overlong_buffer: must be in (0, rollout.max_new_tokens={r.max_new_tokens}] (or null), got {a.overlong_buffer}"),
        (a.overlong_penalty >= 0, f"algorithm.overlong_penalty: must be >= 0, got {a.overlong_penalty}"),
        (a.top_entropy_quantile is None or 0 < a.top_entropy_quantile <= 1,
         f"algorithm.top_entropy_quantile: must be in (0, 1] (or null), got {a.top_entropy_quantile}"),
        (a.rollout_correction_cap > 1, f"algorithm.rollout_correction_cap: must be > 1 (the on-policy ratio is 1), got {a.rollout_correction_cap}"),
        (t.prompts_per_step > 0 and t.mini_batch_prompts > 0 and t.prompts_per_step % t.mini_batch_prompts == 0,
         f"train.mini_batch_prompts: must divide train.prompts_per_step ({t.prompts_per_step}), got {t.mini_batch_prompts}"),
        (t.micro_batch_size > 0, f"train.micro_batch_size: must be > 0, got {t.micro_batch_size}"),
        (t.max_tokens_per_micro_batch is None or t.max_tokens_per_micro_batch > 0, f"train.max_tokens_per_micro_batch: must be > 0 (or null), got {t.max_tokens_per_micro_batch}"),
        (t.ppo_epochs >= 1, f"train.ppo_epochs: must be >= 1, got {t.ppo_epochs}"),
        # A packed row holds several sequences: what needs one sequence per row cannot be packed.
        (not t.packing or (a.loss_agg != "seq-mean-token-mean" and a.policy_loss != "gspo"),
         f"train.packing: needs one sequence per row with algorithm.loss_agg={a.loss_agg} / algorithm.policy_loss={a.policy_loss}; "
         "use token-mean or seq-mean-token-sum-norm, and another policy loss than gspo"),
        (config.log.logprob_increment_every >= 1, f"log.logprob_increment_every: must be >= 1, got {config.log.logprob_increment_every}"),
        (config.log.sign_grad_norm_every >= 0, f"log.sign_grad_norm_every: must be >= 0, got {config.log.sign_grad_norm_every}"),
        (t.resume in ("auto", "never") or Path(t.resume).exists(), f"train.resume: 'auto', 'never' or an existing checkpoint, got {t.resume!r}"),
        (len(t.adam_betas) == 2, f"train.adam_betas: expected two numbers, got {t.adam_betas}"),
        ((m.lora_rank or 0) >= 0, f"model.lora_rank: must be >= 0 (0 or null: no LoRA), got {m.lora_rank}"),
        (m.lora_alpha > 0, f"model.lora_alpha: must be > 0, got {m.lora_alpha}"),
        (not m.lora_rank or (m.lora_target_modules and all(isinstance(n, str) for n in m.lora_target_modules)),
         f"model.lora_target_modules: expected a non-empty list of module names (or all-linear), got {m.lora_target_modules}"),
    ]
    return [message for ok, message in checks if not ok] + tracker_problems(config.log.trackers)


def modulation_problems(a: AlgorithmConfig) -> list[tuple[bool, str]]:
    """``algorithm.alpha_schedule`` and its keys: the estimator must have the exponents it moves."""
    from asymrl import advantages

    if a.alpha_schedule == "constant" or advantages.ESTIMATORS.problem(a.estimator):
        return [(a.alpha_pos_end is None and a.alpha_neg_end is None and a.target_entropy is None,
                 "algorithm.alpha_pos_end / alpha_neg_end / target_entropy: only used with an alpha_schedule "
                 f"(algorithm.alpha_schedule is {a.alpha_schedule!r})")]
    exponents = set(advantages.parameters(a.estimator)) & {"alpha_pos", "alpha_neg"}
    key = "algorithm.alpha_schedule"
    if a.alpha_schedule == "entropy_target":
        low, high = (list(a.alpha_pos_range) + [None, None])[:2]
        return [
            ("alpha_pos" in exponents, f"{key}: entropy_target moves alpha_pos, which estimator {a.estimator!r} does not have"),
            (a.target_entropy is not None and a.target_entropy > 0, f"algorithm.target_entropy: entropy_target needs a target > 0, got {a.target_entropy}"),
            (a.alpha_controller_rate > 0, f"algorithm.alpha_controller_rate: must be > 0, got {a.alpha_controller_rate}"),
            (len(a.alpha_pos_range) == 2 and isinstance(low, (int, float)) and isinstance(high, (int, float)) and 0 <= low <= high,
             f"algorithm.alpha_pos_range: expected [low, high] with 0 <= low <= high, got {a.alpha_pos_range}"),
        ]
    ends = {"alpha_pos": a.alpha_pos_end, "alpha_neg": a.alpha_neg_end}
    return [
        (any(v is not None for v in ends.values()), f"{key}: {a.alpha_schedule} needs algorithm.alpha_pos_end or alpha_neg_end"),
        *[(value is None or name in exponents, f"algorithm.{name}_end: estimator {a.estimator!r} has no {name}")
          for name, value in ends.items()],
        *[(value is None or value >= 0, f"algorithm.{name}_end: must be >= 0, got {value}") for name, value in ends.items()],
    ]


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
    elif t.max_tokens_per_micro_batch is None and ((rows // world_size) % t.micro_batch_size or rows % world_size):
        problems.append(f"train.micro_batch_size ({t.micro_batch_size}) must divide the per-process mini-batch "
                        f"(mini_batch_prompts x G / processes = {rows} / {world_size})")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def help_text() -> str:
    lines = ["keys (set in YAML sections or as key=value):"]
    for key, owner, item in _knobs(Config()):
        lines.append(f"  {key} = {getattr(owner, item.name)!r}\n      {item.metadata.get('help', '')}")
    return "\n".join(lines)


def reward_from_cli(name: str, kwargs: list[str], timeout_s: float = RewardConfig.timeout_s) -> RewardConfig:
    """A checked ``RewardConfig`` from a command line's reward name, ``NAME=VALUE`` kwargs and time
    limit (``evaluate``, the toy report); raises ConfigError naming the bad key."""
    values: dict[str, Any] = {"reward.name": name, "reward.timeout_s": timeout_s}
    for item in kwargs:
        key, value = parse_override(item)
        values[f"reward.kwargs.{key}"] = value
    return build_config(values).reward


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
