"""The policy update on accelerate + DeepSpeed ZeRO: model, optimizer, micro-batched PPO steps.

The distributed engine is accelerate (plain, DDP, or DeepSpeed ZeRO-2/3 as the launch config says);
nothing here implements communication itself. What this module adds is the bookkeeping that makes
the *token-level* loss exact under any split:

* a mini-batch of rollouts (across all ranks) is one optimizer step; each rank cuts its share into
  micro-batches: ``micro_batch_size`` sequences each (fixed-count mode), or, with
  ``max_tokens_per_micro_batch``, length-sorted groups whose padded size stays within that many
  tokens, as many on every rank (``token_budget_micro_batches``);
* every micro-batch's loss is normalised by the mini-batch-wide token / sequence counts (summed over
  ranks), then multiplied by the accumulation divisor x ``world_size`` because accelerate and
  DeepSpeed divide the loss by the former and average gradients over the latter. The gradient that
  reaches the optimizer is then exactly the gradient of the whole mini-batch's loss (the paper's
  token-level aggregation, DAPO's token-mean).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, InitProcessGroupKwargs, ProjectConfiguration

from asymrl.logprobs import sequence_logprobs
from asymrl.loss import PolicyLossConfig, aggregate, policy_loss, sign_channel_losses
from asymrl.rollout.weight_sync import full_weights_loading, gathered, iter_full_parameters


def launched_world_size() -> int:
    """Processes started by the launcher (accelerate / torchrun set WORLD_SIZE), before any set-up."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def build_accelerator(gradient_accumulation_steps: int, micro_batch_size: int, grad_clip: float,
                      trackers: list[str] = (), run_dir: Path | None = None) -> Accelerator:
    """An ``Accelerator`` that works the same on CPU (gloo) and GPU (nccl), with or without DeepSpeed.

    ``trackers`` (accelerate's names: tensorboard, wandb, mlflow, ...) are opened later by
    ``MetricsLog.start``; the ones that write files locally write under ``<run_dir>/tensorboard``.

    Traps handled (each seen on CPU machines): without CUDA the process group must be created with gloo, or
    every rank believes it is rank 0 of 1; DeepSpeed needs integer micro-batch and clipping values
    because no dataloader is prepared.
    """
    on_cpu = not torch.cuda.is_available()
    launched = launched_world_size() > 1
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    handlers = [InitProcessGroupKwargs(backend="gloo")] if on_cpu and launched else []
    # cpu=True would silently turn a DeepSpeed launch into plain gloo DDP: only without DeepSpeed.
    project = None if run_dir is None else ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(Path(run_dir) / "tensorboard"))
    accelerator = Accelerator(
        gradient_accumulation_steps=gradient_accumulation_steps, kwargs_handlers=handlers, cpu=on_cpu and not deepspeed,
        log_with=list(trackers) or None, project_config=project,
    )
    plugin = accelerator.state.deepspeed_plugin
    if plugin is not None:
        ds_config = plugin.deepspeed_config
        ds_config["train_micro_batch_size_per_gpu"] = micro_batch_size
        ds_config["gradient_accumulation_steps"] = gradient_accumulation_steps
        ds_config["train_batch_size"] = micro_batch_size * gradient_accumulation_steps * accelerator.num_processes
        ds_config["gradient_clipping"] = grad_clip
        # A torch optimizer under ZeRO-offload: DeepSpeed refuses a client optimizer without this.
        ds_config.setdefault("zero_force_ds_cpu_optimizer", False)
    return accelerator


class PolicyWithLogprobs(torch.nn.Module):
    """Wraps a causal LM so that its forward returns per-token log-probs and entropies.

    accelerate / DDP / DeepSpeed wrap *this* module, so their forward hooks (gradient reduction,
    ZeRO-3 parameter gathering) run, while the LM head is applied in chunks to response positions only.
    """

    def __init__(self, model: torch.nn.Module, chunk_size: int = 1024):
        super().__init__()
        self.model = model
        self.chunk_size = chunk_size

    def forward(self, input_ids, attention_mask, response_mask, temperature: float = 1.0, position_ids=None):
        return sequence_logprobs(
            self.model, input_ids, attention_mask, response_mask, temperature=temperature,
            chunk_size=self.chunk_size, min_chunks=self._chunks_on_every_rank(response_mask), position_ids=position_ids,
        )

    def _chunks_on_every_rank(self, response_mask: torch.Tensor) -> int:
        """Under ZeRO-3 each LM-head call is a collective: every rank must make as many as the rank
        with the most response tokens (elsewhere: no constraint)."""
        if not hasattr(self.model.get_output_embeddings().weight, "ds_id"):
            return 0
        chunks = torch.tensor([-(-int(response_mask[:, 1:].sum()) // self.chunk_size)], device=response_mask.device)
        torch.distributed.all_reduce(chunks, op=torch.distributed.ReduceOp.MAX)
        return int(chunks)


def load_frozen_policy(model_dir, dtype: str, device, trust_remote_code: bool = False) -> PolicyWithLogprobs:
    """A frozen policy for log-probs only (the KL reference), whole on every rank under any ZeRO stage.

    Replicated rather than partitioned: outside DeepSpeed's engine nothing would gather its shards
    (at 4B scale that is 8 GB of bf16 per GPU).
    """
    from transformers import AutoModelForCausalLM

    from asymrl.attention import prefer_sdpa_gqa

    with full_weights_loading():
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code)
    return PolicyWithLogprobs(prefer_sdpa_gqa(model).requires_grad_(False).eval()).to(device)


def has_dropout(model: torch.nn.Module) -> bool:
    """Does the model drop anything in training mode (a dropout module, or transformers' functional
    attention dropout)? Then its training-mode log-probs are not its sampling policy's."""
    modules = any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())
    return modules or float(getattr(getattr(model, "config", None), "attention_dropout", 0.0) or 0.0) > 0


@dataclass
class RolloutBatch:
    """Right-padded rollouts of one training step on this rank, one row per rollout."""

    input_ids: torch.Tensor  # (rows, seq)
    attention_mask: torch.Tensor  # (rows, seq)
    response_mask: torch.Tensor  # (rows, seq): 1 on response tokens

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def rows(self, index: slice | torch.Tensor) -> "RolloutBatch":
        """A subset of rows, trimmed to the longest sequence among them."""
        attention = self.attention_mask[index]
        length = int(attention.sum(dim=1).max()) if len(attention) else 0
        return RolloutBatch(self.input_ids[index, :length], attention[:, :length], self.response_mask[index, :length])


@dataclass
class PackedLayout:
    """Where each real token of a micro-batch's right-padded rows sits once the rows are packed
    (several sequences per row): ``source`` (row, column) and ``target`` (packed row, column) index
    the same tokens in the same order."""

    rows: int
    width: int
    source: tuple[torch.Tensor, torch.Tensor]
    target: tuple[torch.Tensor, torch.Tensor]

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        """``(rows, seq)`` right-padded -> ``(packed rows, width)``, zero where no token sits."""
        packed = tensor.new_zeros((self.rows, self.width))
        packed[self.target] = tensor[self.source]
        return packed

    def unpack(self, packed: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """The inverse of :meth:`pack` for a tensor of the packed shape, zero on padding."""
        tensor = packed.new_zeros(shape)
        tensor[self.source] = packed[self.target]
        return tensor


def pack_layout(lengths: list[int]) -> PackedLayout:
    """Rows of these real lengths packed first-fit, longest first, into rows as wide as the longest
    (so packing never widens a micro-batch; a row is never split). Hand-written: a few lines of
    bin packing, where a library would add a dependency for nothing."""
    width = max(lengths)
    room: list[int] = []
    source_rows, source_columns, target_rows, target_columns = [], [], [], []
    for row in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        length = lengths[row]
        packed_row = next((b for b, free in enumerate(room) if free >= length), len(room))
        if packed_row == len(room):
            room.append(width)
        offset = width - room[packed_row]
        room[packed_row] -= length
        source_rows += [row] * length
        source_columns += range(length)
        target_rows += [packed_row] * length
        target_columns += range(offset, offset + length)
    as_tensor = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
    return PackedLayout(len(room), width, (as_tensor(source_rows), as_tensor(source_columns)),
                        (as_tensor(target_rows), as_tensor(target_columns)))


def padded_tokens(lengths: list[int]) -> int:
    """Tokens a right-padded micro-batch of rows with these lengths processes: rows x longest."""
    return len(lengths) * max(lengths, default=0)


def _next_fit(sorted_lengths: list[int], max_tokens: int) -> list[int]:
    """Cut points of lengths sorted longest first into consecutive groups of padded size <= max_tokens
    (a row longer than the budget gets a group of its own)."""
    cuts, start = [], 0
    for index in range(1, len(sorted_lengths) + 1):
        if index == len(sorted_lengths) or (index - start + 1) * sorted_lengths[start] > max_tokens:
            cuts.append(index)
            start = index
    return cuts


def micro_batches_needed(lengths: list[int], max_tokens: int) -> int:
    """How many micro-batches of padded size <= ``max_tokens`` these rows need (longest first)."""
    return len(_next_fit(sorted(lengths, reverse=True), max_tokens)) if lengths else 0


def token_budget_micro_batches(lengths: list[int], max_tokens: int, count: int | None = None) -> list[list[int]]:
    """Row indices grouped into micro-batches by token count: exactly ``count`` of them (default: as
    few as the budget allows), each of padded size <= ``max_tokens`` where ``count`` permits.

    Rows are sorted longest first, so each micro-batch holds rows of similar length (little padding);
    the budget is then lowered as far as ``count`` groups allow (binary search: the number of groups
    only grows as the budget shrinks), which balances the groups' padded sizes, and a group of
    several rows is halved while fewer than ``count`` groups exist. Every rank asks for the same
    ``count`` (the largest any rank needs), so no rank waits on another's extra micro-batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    ordered = [lengths[i] for i in order]
    count = micro_batches_needed(ordered, max_tokens) if count is None else count
    if not 0 < count <= len(lengths):
        raise ValueError(f"cannot split {len(lengths)} rows into {count} micro-batches")
    low, high = max(ordered), max(max_tokens, max(ordered))
    while low < high:  # the smallest budget that needs at most `count` groups
        middle = (low + high) // 2
        if len(_next_fit(ordered, middle)) <= count:
            high = middle
        else:
            low = middle + 1
    groups, start = [], 0
    for cut in _next_fit(ordered, low):
        groups.append(order[start:cut])
        start = cut
    while len(groups) < count:
        largest = max((g for g in groups if len(g) > 1), key=lambda g: padded_tokens([lengths[i] for i in g]))
        position = groups.index(largest)
        half = len(largest) // 2
        groups[position : position + 1] = [largest[:half], largest[half:]]
    return groups


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int):
    """Multiplier of the base lr at optimizer step ``s``: linear warm-up, then constant / cosine / linear."""

    def multiplier(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if schedule == "linear":
            return 1.0 - progress
        raise ValueError(f"unknown lr schedule {schedule!r}")

    return multiplier


@dataclass
class UpdateConfig:
    """Everything :class:`PolicyUpdater` needs, independent of how the run is configured."""

    lr: float = 1e-6
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    total_optimizer_steps: int = 1
    grad_clip: float = 1.0
    micro_batch_size: int = 4
    max_tokens_per_micro_batch: int | None = None  # set: micro-batches formed by token count instead
    packing: bool = False  # each micro-batch's sequences packed into rows as wide as its longest
    ppo_epochs: int = 1
    temperature: float = 1.0
    logprob_chunk_size: int = 1024
    gradient_checkpointing: bool = False
    lora_rank: int = 0  # 0: full fine-tuning
    lora_alpha: float = 16.0
    lora_target_modules: tuple[str, ...] = ("all-linear",)
    loss: PolicyLossConfig = field(default_factory=PolicyLossConfig)


def add_lora(model: torch.nn.Module, rank: int, alpha: float, target_modules) -> torch.nn.Module:
    """``model`` frozen, its ``target_modules`` given LoRA adapters: a peft model whose adapted layers
    compute ``W x + (alpha / rank) B A x`` with ``B = 0`` at the start (Hu et al. 2021).

    No adapter dropout: it would make the update's forward pass differ from the log-prob pass that
    produced the old log-probs, so the PPO ratio would not start at 1.
    """
    from peft import LoraConfig, get_peft_model

    targets = list(target_modules)
    # "all-linear" is peft's keyword only as a plain string (every linear layer but the output layer).
    targets = targets[0] if targets == ["all-linear"] else targets
    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, task_type="CAUSAL_LM"))


class PolicyUpdater:
    """Owns the trainable policy: log-prob passes, PPO mini-batch updates, export of its weights.

    With ``config.lora_rank > 0`` the policy is a peft model that trains LoRA adapters only (the
    optimizer holds just their parameters); its exports are the merged weights. Its checkpointed
    state (registered with the accelerator, so ``save_state`` / ``load_state`` carry it) is the lr
    scheduler and the step counters.
    """

    def __init__(self, accelerator: Accelerator, model: torch.nn.Module, config: UpdateConfig):
        self.accelerator = accelerator
        self.config = config
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
        if config.lora_rank:
            model = add_lora(model, config.lora_rank, config.lora_alpha, config.lora_target_modules)
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=config.lr, betas=tuple(config.adam_betas),
            weight_decay=config.weight_decay,
        )
        policy = PolicyWithLogprobs(model, config.logprob_chunk_size)
        self.policy, self.optimizer = accelerator.prepare(policy, optimizer)
        # Stepped by hand once per optimizer step (accelerate's wrapper would step it once per process).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self._raw_optimizer(),
            lr_lambda(config.lr_schedule, config.warmup_steps, config.total_optimizer_steps),
        )
        self.optimizer_steps = 0
        self.skipped_steps = 0
        self.padded_tokens = self.real_tokens = 0  # since the last take_padding_statistics()
        accelerator.register_for_checkpointing(self.scheduler, self)

    def state_dict(self) -> dict[str, int]:
        """The step counters (checkpointed through ``register_for_checkpointing``)."""
        return {"optimizer_steps": self.optimizer_steps, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.optimizer_steps = state["optimizer_steps"]
        self.skipped_steps = state["skipped_steps"]

    # -- helpers -----------------------------------------------------------------------------------

    def _raw_optimizer(self) -> torch.optim.Optimizer:
        optimizer = self.optimizer
        while hasattr(optimizer, "optimizer"):
            optimizer = optimizer.optimizer
        return optimizer

    @property
    def uses_deepspeed(self) -> bool:
        return self.accelerator.distributed_type == DistributedType.DEEPSPEED

    @property
    def model(self) -> torch.nn.Module:
        """The bare transformers model (unwrapped from DDP / DeepSpeed); with LoRA, the peft model."""
        return self.accelerator.unwrap_model(self.policy).model

    @property
    def uses_lora(self) -> bool:
        return self.config.lora_rank > 0

    def _global_sum(self, value: float) -> float:
        tensor = torch.tensor([float(value)], device=self.accelerator.device)
        return float(self.accelerator.reduce(tensor, reduction="sum")) if self.accelerator.num_processes > 1 else value

    def _micro_batch_rows(self, batch: RolloutBatch, rows: torch.Tensor) -> list[torch.Tensor]:
        """The rows of each micro-batch: consecutive groups of ``micro_batch_size``, or groups by
        token budget, as many on every rank (a collective in that mode: every rank must call it)."""
        config = self.config
        if config.max_tokens_per_micro_batch is None:
            return [rows[start : start + config.micro_batch_size] for start in range(0, len(rows), config.micro_batch_size)]
        lengths = batch.attention_mask[rows].sum(dim=1).tolist()
        count = micro_batches_needed(lengths, config.max_tokens_per_micro_batch) if lengths else 0
        if self.accelerator.num_processes > 1:
            needed = torch.tensor([count], device=self.accelerator.device)
            count = int(self.accelerator.reduce(needed, reduction="max"))
        if not lengths:  # no rows: e.g. the log-prob pass when the update's forward supplies its only mini-batch
            return []
        return [rows[group] for group in token_budget_micro_batches(lengths, config.max_tokens_per_micro_batch, count)]

    def _micro_batches(self, batch: RolloutBatch, rows: torch.Tensor) -> Iterator[tuple[torch.Tensor, RolloutBatch]]:
        for index in self._micro_batch_rows(batch, rows):
            yield index, batch.rows(index)

    def _inputs(self, micro: RolloutBatch) -> tuple[dict[str, torch.Tensor | None], PackedLayout | None]:
        """The policy's inputs for one micro-batch, on the device: its right-padded rows, or (packing)
        its sequences packed into fewer rows with position ids restarting at 0 for each and no
        attention mask, from which transformers builds the per-sequence attention."""
        lengths = micro.attention_mask.sum(dim=1)
        self.real_tokens += int(lengths.sum())
        if not self.config.packing:
            self.padded_tokens += micro.attention_mask.numel()
            input_ids, attention_mask, response_mask = self._to_device(micro)
            return {"input_ids": input_ids, "attention_mask": attention_mask, "response_mask": response_mask}, None
        layout = pack_layout(lengths.tolist())
        self.padded_tokens += layout.rows * layout.width
        positions = torch.arange(micro.input_ids.shape[1]).expand_as(micro.input_ids)
        device = self.accelerator.device
        return {"input_ids": layout.pack(micro.input_ids).to(device), "attention_mask": None,
                "response_mask": layout.pack(micro.response_mask).to(device), "position_ids": layout.pack(positions).to(device)}, layout

    def _laid_out(self, values: torch.Tensor, index: torch.Tensor, micro: RolloutBatch, layout: PackedLayout | None) -> torch.Tensor:
        """The rows ``index`` of a per-token tensor of the whole batch, as wide as the micro-batch
        ``micro`` and in its inputs' layout (packed when ``layout``), on the device."""
        values = values[index, : micro.input_ids.shape[1]]
        return (values if layout is None else layout.pack(values)).to(self.accelerator.device)

    @staticmethod
    def _write_rows(target: torch.Tensor, values: torch.Tensor, index: torch.Tensor, micro: RolloutBatch, layout: PackedLayout | None) -> None:
        """The inverse of ``_laid_out``: a micro-batch's per-token ``values`` (in its inputs' layout)
        written into rows ``index`` of the whole batch's ``target`` (on the CPU)."""
        values = values.detach().float().cpu()
        if layout is not None:
            values = layout.unpack(values, micro.input_ids.shape)
        target[index, : micro.input_ids.shape[1]] = values

    def _accumulation_divisor(self) -> int:
        """What each micro-batch loss is divided by on its way to the gradient: DeepSpeed divides by
        its configured accumulation steps, accelerate by the current ``gradient_accumulation_steps``."""
        if self.uses_deepspeed:
            return int(self.accelerator.state.deepspeed_plugin.deepspeed_config["gradient_accumulation_steps"])
        return self.accelerator.gradient_accumulation_steps

    def take_padding_statistics(self) -> dict[str, float]:
        """Padded fraction of the tokens the passes since the last call processed (then reset)."""
        fraction = 1.0 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0
        self.padded_tokens = self.real_tokens = 0
        return {"batching/padded_frac": fraction}

    def _to_device(self, batch: RolloutBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        device = self.accelerator.device
        return batch.input_ids.to(device), batch.attention_mask.to(device), batch.response_mask.to(device)

    # -- log-prob passes ---------------------------------------------------------------------------

    def logprobs(self, batch: RolloutBatch, policy: torch.nn.Module | None = None, first_row: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probs and entropies of every rollout, ``(rows, seq)``, under the current
        policy (computed by the training model itself, not taken from the engine) or under
        ``policy`` (e.g. the frozen reference), micro-batch by micro-batch. Rows before ``first_row``
        are left at zero (``update`` fills the first mini-batch's from its own forward)."""
        policy = policy if policy is not None else self.policy
        policy.eval()
        logprobs = torch.zeros(batch.input_ids.shape, dtype=torch.float32)
        entropy = torch.zeros_like(logprobs)
        with torch.no_grad():
            for index, micro in self._micro_batches(batch, torch.arange(first_row, len(batch))):
                inputs, layout = self._inputs(micro)
                logp, ent = policy(**inputs, temperature=self.config.temperature)
                self._write_rows(logprobs, logp, index, micro, layout)
                self._write_rows(entropy, ent, index, micro, layout)
        return logprobs, entropy

    # -- diagnostics -------------------------------------------------------------------------------

    @property
    def partitions_parameters(self) -> bool:
        """DeepSpeed ZeRO-3: each rank holds a shard of every parameter."""
        return self.uses_deepspeed and self.accelerator.state.deepspeed_plugin.zero_stage == 3

    def sign_gradient_norms(self, batch: RolloutBatch, advantages: torch.Tensor) -> dict[str, float]:
        """How much of the step's policy gradient the positive and the negative rollouts carry: the
        norms of the two channels' gradients (``loss.sign_channel_losses``) at the current policy,
        summed over every micro-batch and rank, their share ``n_pos / (n_pos + n_neg)`` and their
        cosine (negative: the channels partly cancel). One forward and two backward passes over the
        batch, through ``torch.autograd.grad`` on the unwrapped policy: the parameters' ``.grad`` and
        DDP's / ZeRO's gradient hooks (which fire on accumulation into ``.grad``) are not touched, so
        the update that follows is unchanged. Not under ZeRO-3, whose ranks hold parameter shards."""
        if self.partitions_parameters:
            raise ValueError("the sign-split gradient norms need whole parameters on every rank (not DeepSpeed ZeRO-3)")
        config = self.config
        policy = self.accelerator.unwrap_model(self.policy)
        policy.eval()
        parameters = [p for p in policy.parameters() if p.requires_grad]
        totals = {name: [torch.zeros(p.shape, dtype=torch.float32, device=p.device) for p in parameters] for name in ("pos", "neg")}
        num_tokens = self._global_sum(batch.response_mask.sum())
        num_sequences = self._global_sum(len(batch))

        def reduce(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return aggregate(per_token, mask, config.loss.aggregation, num_tokens=num_tokens,
                             num_sequences=num_sequences, constant=config.loss.aggregation_constant)

        for index, micro in self._micro_batches(batch, torch.arange(len(batch))):
            inputs, layout = self._inputs(micro)
            logp, _ = policy(**inputs, temperature=config.temperature)
            losses = sign_channel_losses(logp, self._laid_out(advantages, index, micro, layout), inputs["response_mask"], reduce)
            for name, loss in losses.items():
                grads = torch.autograd.grad(loss, parameters, retain_graph=name == "pos", allow_unused=True)
                for total, grad in zip(totals[name], grads):
                    if grad is not None:
                        total += grad.float()
        flat = {name: torch.cat([t.flatten() for t in tensors]) for name, tensors in totals.items()}
        if self.accelerator.num_processes > 1:
            flat = {name: self.accelerator.reduce(vector, reduction="sum") for name, vector in flat.items()}
        norm_pos, norm_neg = float(flat["pos"].norm()), float(flat["neg"].norm())
        out = {"actor/sign/grad_norm_pos": norm_pos, "actor/sign/grad_norm_neg": norm_neg}
        if norm_pos + norm_neg > 0:
            out["actor/sign/grad_share_pos"] = norm_pos / (norm_pos + norm_neg)
        if norm_pos > 0 and norm_neg > 0:
            out["actor/sign/grad_cos"] = float(flat["pos"] @ flat["neg"]) / (norm_pos * norm_neg)
        return out

    # -- the PPO update ----------------------------------------------------------------------------

    def update(
        self,
        batch: RolloutBatch,
        advantages: torch.Tensor,
        old_logprobs: torch.Tensor,
        mini_batch_rows: int,
        ref_logprobs: torch.Tensor | None = None,
        *,
        old_entropy: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """``ppo_epochs`` passes over the rollouts in mini-batches of ``mini_batch_rows`` rows (this rank's
        share), one optimizer step per mini-batch. ``advantages`` is ``(rows, seq)`` per token.
        Returns metrics averaged over micro-batches (grad norm over optimizer steps).

        With ``old_entropy`` (``(rows, seq)``, like ``old_logprobs``) the first mini-batch's rows of
        both are not read but written: its forward in the first epoch runs before any optimizer step,
        at the policy that sampled (on-policy), so its own log-probs, detached, are the old ones (the
        ratio is exactly 1) and its entropies the sampling policy's. That spares a separate no-grad
        pass over those rows (``logprobs(batch, first_row=mini_batch_rows)`` computes the others)."""
        config = self.config
        if config.max_tokens_per_micro_batch is None and mini_batch_rows % config.micro_batch_size:
            raise ValueError(f"mini-batch of {mini_batch_rows} rows is not a multiple of micro_batch_size {config.micro_batch_size}")
        self.policy.train()
        world = self.accelerator.num_processes
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        loss_sum, mini_batches = 0.0, 0

        def add(key: str, value: float) -> None:
            if value is not None and math.isfinite(value):
                sums[key] = sums.get(key, 0.0) + value
                counts[key] = counts.get(key, 0) + 1

        for epoch in range(config.ppo_epochs):
            for start in range(0, len(batch), mini_batch_rows):
                records_old = old_entropy is not None and epoch == 0 and start == 0
                rows = torch.arange(start, min(start + mini_batch_rows, len(batch)))
                mask = batch.response_mask[rows]
                num_tokens = self._global_sum(mask.sum())
                num_sequences = self._global_sum(len(rows))
                mini_batches += 1
                micro_batches = list(self._micro_batches(batch, rows))
                # The number of micro-batches can change per mini-batch (token budget): accelerate
                # syncs gradients on its last one, counting from zero.
                self.accelerator.gradient_accumulation_steps = len(micro_batches)
                self.accelerator.step = 0
                for index, micro in micro_batches:
                    with self.accelerator.accumulate(self.policy):
                        inputs, layout = self._inputs(micro)

                        def laid_out(values: torch.Tensor) -> torch.Tensor:
                            return self._laid_out(values, index, micro, layout)

                        logp, entropy = self.policy(**inputs, temperature=config.temperature)
                        if records_old:
                            self._write_rows(old_logprobs, logp, index, micro, layout)
                            self._write_rows(old_entropy, entropy, index, micro, layout)
                        loss, metrics = policy_loss(
                            logp,
                            logp.detach() if records_old else laid_out(old_logprobs),
                            laid_out(advantages),
                            inputs["response_mask"],
                            config.loss,
                            entropy=entropy,
                            ref_logprobs=None if ref_logprobs is None else laid_out(ref_logprobs),
                            num_tokens=num_tokens,
                            num_sequences=num_sequences,
                        )
                        # accelerate / DeepSpeed divide by the accumulation steps and average over
                        # ranks; undo both so the mini-batch gradient is the plain sum (module doc).
                        self.accelerator.backward(loss * self._accumulation_divisor() * world)
                        # pg_loss of a micro-batch is its share of the mini-batch loss: sum it.
                        loss_sum += metrics.pop("pg_loss")
                        for key, value in metrics.items():
                            add(key, value)
                        if self.accelerator.sync_gradients:
                            add("grad_norm", self._finish_optimizer_step())
        result = {f"actor/{key}": sums[key] / counts[key] for key in sums}
        result["actor/pg_loss"] = self._global_sum(loss_sum) / max(mini_batches, 1)
        result["actor/lr"] = self.scheduler.get_last_lr()[0]
        result["actor/optimizer_steps"] = self.optimizer_steps
        result["actor/skipped_steps"] = self.skipped_steps
        return result

    def _finish_optimizer_step(self) -> float:
        """Clip, step (or skip on a non-finite gradient norm), schedule; returns the pre-clip norm."""
        grad_norm = self.accelerator.clip_grad_norm_(self.policy.parameters(), self.config.grad_clip)
        grad_norm = float(grad_norm) if grad_norm is not None else math.nan
        applied = math.isfinite(grad_norm)
        # DeepSpeed already stepped inside backward (and skips by itself on a non-finite norm).
        if applied and not self.uses_deepspeed:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if applied:
            self.scheduler.step()
            self.optimizer_steps += 1
        else:
            self.skipped_steps += 1
            self.accelerator.print(f"warning: non-finite gradient norm ({grad_norm}); optimizer step skipped")
        return grad_norm

    # -- export ------------------------------------------------------------------------------------

    def save_pretrained(self, out_dir: Path, tokenizer=None) -> None:
        """Write a standard transformers model directory (ZeRO-3 shards gathered), main process only.

        With LoRA the directory holds the merged weights (loadable without peft, by the engines too)
        and ``adapter/`` the adapter alone (``PeftModel.from_pretrained(base, out_dir / "adapter")``).
        """
        out_dir = Path(out_dir)
        main = self.accelerator.is_main_process
        if self.uses_lora:
            # Every rank iterates (the ZeRO-3 gathers are collective); the main process keeps the tensors.
            state_dict, adapter = {}, {}
            for name, tensor in iter_full_parameters(self.model):
                if main:
                    state_dict[name] = tensor.detach().cpu()
            for name, parameter in self.model.named_parameters():
                if parameter.requires_grad:
                    with gathered([parameter]):
                        if main:
                            adapter[name] = parameter.detach().cpu().clone()
            model = self.model.get_base_model()
        else:
            state_dict = self.accelerator.get_state_dict(self.policy)
            prefix = "model."
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)} if state_dict else None
            model = self.model
        if main:
            out_dir.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(out_dir, state_dict=state_dict, safe_serialization=True)
            if self.uses_lora:
                self.model.save_pretrained(out_dir / "adapter", state_dict=adapter)
            if tokenizer is not None:
                tokenizer.save_pretrained(out_dir)
        self.accelerator.wait_for_everyone()


def release_process_group() -> None:
    """Tear the process group down before exit: left to interpreter shutdown, gloo's threads can
    abort a rank ("terminate called without an active exception") after all work is done."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def cpu_thread_setup() -> None:
    """Pin intra-op threads to OMP_NUM_THREADS (2 processes on 2 cores oversubscribed 15x otherwise)."""
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():
        torch.set_num_threads(int(threads))
