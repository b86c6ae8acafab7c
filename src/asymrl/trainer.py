"""The RLVR loop. One step, as in the paper's algorithm box (``Trainer.step``):

    prompts -> G rollouts each (rollout engine)                        generate
            -> rewards (reward registry, killable process pool)       verify
            -> advantages (estimator registry)                        advantages
            -> old log-probs and entropies (training model, chunked)  old log-probs
            -> per-token shaping (asymrl.shaping: the stages the config switches on)
            -> PPO mini-batch update(s), token-mean over the whole mini-batch
            -> new weights pushed to the rollout engine               sync
            -> diagnostics over all ranks                             log

Each rank owns a colocated rollout engine and a slice of every step's prompts; whole groups stay on
one rank, so group-relative advantages need no communication (an estimator that reads the whole
batch gets it gathered: ``advantages.CONTEXT_PARAMETERS``). Everything else (config, data, engines,
rewards, estimators, shaping, loss, update, metrics, checkpoints) lives in its own module; this file
only wires them.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm.auto import tqdm

from asymrl import advantages as estimators
from asymrl import metrics as diagnostics
from asymrl import modulation, shaping
from asymrl.checkpoint import load_checkpoint, resolve_resume, save_checkpoint
from asymrl.config import Config, ConfigError, check_world_size
from asymrl.data import DataError, PromptSampler, load_problems
from asymrl.loss import PolicyLossConfig
from asymrl.metrics import MetricsLog, mean_response_logprob
from asymrl.prompts import context_overflow, render_prompt
from asymrl.reward import RewardFn, build_reward
from asymrl.rollout import SamplingParams, build_engine, collate, iter_full_parameters, push_weights
from asymrl.rollout_correction import mismatch_per_rollout
from asymrl.toy.build import model_context, resolve_model_dir
from asymrl.update import (PolicyUpdater, RolloutBatch, UpdateConfig, build_accelerator, cpu_thread_setup, has_dropout, launched_world_size,
                           load_frozen_policy, release_process_group)


class PhaseTimer:
    """Wall-clock seconds spent in each named phase of a step."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        yield
        self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start


class Trainer:
    """``Trainer(config).train()``: what ``train.py`` and ``import asymrl`` both run.

    ``reward_fn(response, example, **reward.kwargs) -> float`` replaces ``reward.name`` when given; like
    every reward it runs in the reward worker pool, so it must be importable (``asymrl.reward.registry``).
    """

    def __init__(self, config: Config, reward_fn: RewardFn | None = None):
        cpu_thread_setup()
        self.config = config
        self.reward = build_reward(config.reward, reward_fn)  # first: a reward that cannot run fails before any loading
        train, rollout = config.train, config.rollout
        self.group_size = rollout.group_size
        # The world size shapes every batch, and the accelerator needs those shapes at creation.
        probe_world = launched_world_size()
        check_world_size(config, probe_world)
        self.mini_batch_rows = train.mini_batch_prompts * self.group_size // probe_world
        self.run_dir = Path(train.output_dir)
        # DeepSpeed wants a fixed micro-batch shape at start; under a token budget the update sets the
        # real number of micro-batches per mini-batch (update.PolicyUpdater._micro_batch_rows).
        micro_rows = train.micro_batch_size if train.max_tokens_per_micro_batch is None else 1
        self.accelerator = build_accelerator(self.mini_batch_rows // micro_rows, micro_rows, train.grad_clip,
                                             trackers=config.log.trackers, run_dir=self.run_dir)
        acc = self.accelerator
        torch.manual_seed(train.seed)

        self.model_dir = resolve_model_dir(config.model.path)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from asymrl.attention import prefer_sdpa_gqa

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, trust_remote_code=config.model.trust_remote_code)
        except OSError as error:  # a missing folder reaches transformers as a malformed hub id
            path = config.model.path
            looks_local = Path(path).is_absolute() or path.startswith(".") or path.count("/") > 1
            reason = "no such folder" if looks_local else f"no such folder, and the hub could not provide it ({str(error).splitlines()[0]})"
            raise ConfigError(f"model.path={path!r}: {reason}") from None
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # Data before weights: a bad data file is reported before the slow part of start-up.
        self.train_problems, self.val_problems = self._load_data()
        model = AutoModelForCausalLM.from_pretrained(
            self.model_dir,
            dtype=getattr(torch, config.model.dtype),
            attn_implementation=config.model.attn_implementation,
            trust_remote_code=config.model.trust_remote_code,
        )
        if config.model.attn_implementation is None:
            prefer_sdpa_gqa(model)
        if acc.num_processes != probe_world:
            raise RuntimeError(f"WORLD_SIZE={probe_world} but accelerate started {acc.num_processes} processes")
        steps_per_epoch = max(1, len(self.train_problems) // train.prompts_per_step)
        self.total_steps = train.total_steps if train.total_steps is not None else steps_per_epoch * train.epochs
        algorithm = config.algorithm
        self.updater = PolicyUpdater(
            acc,
            model,
            UpdateConfig(
                lr=train.lr,
                weight_decay=train.weight_decay,
                adam_betas=tuple(train.adam_betas),
                lr_schedule=train.lr_schedule,
                warmup_steps=train.warmup_steps,
                total_optimizer_steps=self.total_steps * train.ppo_epochs * (train.prompts_per_step // train.mini_batch_prompts),
                grad_clip=train.grad_clip,
                micro_batch_size=train.micro_batch_size,
                max_tokens_per_micro_batch=train.max_tokens_per_micro_batch,
                packing=train.packing,
                ppo_epochs=train.ppo_epochs,
                temperature=rollout.temperature,
                gradient_checkpointing=config.model.gradient_checkpointing,
                lora_rank=config.model.lora_rank or 0,
                lora_alpha=config.model.lora_alpha,
                lora_target_modules=tuple(config.model.lora_target_modules),
                loss=PolicyLossConfig(
                    variant=algorithm.policy_loss,
                    variant_params=dict(algorithm.policy_loss_kwargs),
                    eps_low=algorithm.eps_low,
                    eps_high=algorithm.eps_high,
                    dual_clip=algorithm.dual_clip,
                    entropy_coef=algorithm.entropy_coef,
                    aggregation=algorithm.loss_agg,
                    aggregation_constant=config.loss_agg_constant,
                    kl_coef=algorithm.kl_coef,
                    kl_estimator=algorithm.kl_estimator,
                ),
            ),
        )
        if config.log.sign_grad_norm_every and self.updater.partitions_parameters:
            raise ConfigError("log.sign_grad_norm_every: the sign-split gradient norms need whole parameters on every "
                              "rank, and DeepSpeed ZeRO-3 shards them; set it to 0 or use ZeRO-2")
        # Fixed by the config and the model: decided once, not at every step.
        self.stages = shaping.stages_for(config)
        self.old_logprobs_from_update = self._old_logprobs_from_update()
        # A frozen copy of the initial policy, only when a KL penalty asks for it.
        self.reference = None
        if algorithm.kl_coef > 0:
            self.reference = load_frozen_policy(self.model_dir, config.model.dtype, acc.device, config.model.trust_remote_code)
        self.sampler = PromptSampler(self.train_problems, batch_size=train.prompts_per_step, seed=train.seed)
        self.engine = build_engine(
            rollout.backend,
            self.model_dir,
            rollout.engine_options,
            dtype=rollout.engine_dtype or config.model.dtype,
            device=str(acc.device),
            seed=train.seed + acc.process_index,
            max_model_len=config.data.max_prompt_tokens + max(rollout.max_new_tokens, rollout.val_max_new_tokens or 0),
        )
        self.log = MetricsLog(self.run_dir, acc, enabled=acc.is_main_process)
        self.state = {"step": 0, "best_val_accuracy": None, "best_step": None, "initial_val_accuracy": None,
                      "final_val_accuracy": None, "wall_s": 0.0, "alpha_controlled": None}

    # -- set-up helpers ------------------------------------------------------------------------------

    def _load_data(self) -> tuple[list[dict], list[dict]]:
        data = self.config.data
        fields = dict(problem_field=data.problem_field, answer_field=data.answer_field, id_field=data.id_field, local_dir=data.local_dir)
        train, train_stats = load_problems(data.train, data.train_split, **fields)
        val, _ = load_problems(data.validation, data.validation_split, **fields)
        if self.config.eval.max_problems:
            val = val[: self.config.eval.max_problems]
        train_lengths = [self._prompt_tokens(p) for p in train]
        too_long = sum(length > data.max_prompt_tokens for length in train_lengths)
        train = [p for p, length in zip(train, train_lengths) if length <= data.max_prompt_tokens]
        if len(train) < self.config.train.prompts_per_step:
            raise DataError(f"data.train={data.train!r}: {len(train)} usable problems ({train_stats}; {too_long} longer than "
                            f"data.max_prompt_tokens={data.max_prompt_tokens} with data.prompt_template={data.prompt_template!r}) "
                            f"cannot fill train.prompts_per_step={self.config.train.prompts_per_step}")
        if not val:
            raise DataError(f"data.validation={data.validation!r}: no validation problems")
        rollout = self.config.rollout
        longest = max(max(length for length in train_lengths if length <= data.max_prompt_tokens),
                      max(self._prompt_tokens(p) for p in val))
        overflow = context_overflow(longest, max(rollout.max_new_tokens, rollout.val_max_new_tokens or 0),
                                    model_context(self.model_dir, self.config.model.trust_remote_code), data.prompt_template)
        if overflow:
            raise ConfigError(f"data.prompt_template / rollout.max_new_tokens ({self.config.model.path}, task "
                              f"{data.task}): {overflow}")
        self.accelerator.print(f"data: {len(train)} training problems ({train_stats}; {too_long} dropped as longer than "
                               f"data.max_prompt_tokens={data.max_prompt_tokens}), {len(val)} validation problems")
        return train, val

    def _prompt_tokens(self, problem: dict) -> int:
        return len(self.tokenizer(self._prompt(problem), add_special_tokens=False)["input_ids"])

    def _prompt(self, problem: dict) -> str:
        data = self.config.data
        return render_prompt(problem["problem"], self.tokenizer, data.prompt_template, data.use_chat_template, data.enable_thinking)

    def _rank_slice(self, items: list) -> list:
        return items[self.accelerator.process_index :: self.accelerator.num_processes]

    def _rewards(self, responses: list[str], examples: list[dict]) -> tuple[list[float], dict[str, int]]:
        """Scores, and how many cases of this batch timed out / raised / crashed (each scored 0)."""
        before = self.reward.counts
        scores = self.reward.score(responses, examples)
        return scores, {name: count - before[name] for name, count in self.reward.counts.items()}

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate a per-rank tensor (same shape on every rank) over ranks, on the CPU."""
        if self.accelerator.num_processes == 1:
            return tensor
        return self.accelerator.gather(tensor.to(self.accelerator.device)).cpu()

    # -- one step --------------------------------------------------------------------------------

    def _generate_and_verify(self, step: int, round_index: int, problems: list[dict], timer: "PhaseTimer"):
        """This rank's share of ``problems``: G completions each, and their rewards ``(prompts, G)``."""
        config, G = self.config, self.group_size
        local = self._rank_slice(problems)
        with timer("generate"):
            params = SamplingParams(
                n=G, temperature=config.rollout.temperature, top_p=config.rollout.top_p,
                max_new_tokens=config.rollout.max_new_tokens, stop=list(config.rollout.stop),
                # Seeded by step, round and rank: a resumed run samples exactly what the original would have.
                seed=config.train.seed * 1_000_003 + step * 1009 + round_index * 7919 + self.accelerator.process_index,
            )
            groups = self.engine.generate([self._prompt(p) for p in local], params)
        with timer("verify"):
            scores, failures = self._rewards([c.text for group in groups for c in group], [p for p in local for _ in range(G)])
        return groups, torch.tensor(scores, dtype=torch.float32).view(len(local), G), failures

    def _sample_groups(self, step: int, problems: list[dict], timer: "PhaseTimer"):
        """The step's groups on this rank: one round of generation, or with ``algorithm.dynamic_sampling``
        (DAPO, Yu et al. 2025 sec. 3.2) rounds of fresh prompts until every rank holds its share of
        groups whose rewards vary (the others have zero advantage under every group-relative
        estimator), at most ``algorithm.max_generation_rounds``; a batch still short after the last
        round is filled with zero-variance groups (no gradient; their tokens still count in a
        token-mean). Every rank draws the same prompts each round, so the sampler stays in step with
        the other ranks and with a resumed run."""
        algorithm = self.config.algorithm
        groups, rewards, failures = self._generate_and_verify(step, 0, problems, timer)
        if not algorithm.dynamic_sampling:
            return groups, rewards, failures, {}
        target = len(groups)
        kept, evicted, generated = [], [], 0
        for round_index in range(algorithm.max_generation_rounds):
            if round_index:
                problems = self.sampler.next_batch()
                if len(kept) < target:  # a rank already full draws the prompts but generates nothing
                    groups, rewards, round_failures = self._generate_and_verify(step, round_index, problems, timer)
                    failures = {name: failures[name] + count for name, count in round_failures.items()}
                else:
                    groups, rewards = [], torch.zeros(0, self.group_size)
            informative = estimators.informative_groups(rewards)
            for group, group_rewards, keep in zip(groups, rewards, informative.tolist()):
                (kept if keep else evicted).append((group, group_rewards))
            generated += len(groups)
            if self._all_ranks(len(kept) >= target):
                break
        chosen = (kept + evicted)[:target]
        counts = torch.tensor([[float(generated), float(len(evicted)), float(max(0, target - len(kept)))]])
        generated_all, evicted_all, short_all = self._gather(counts).sum(dim=0).tolist()
        metrics = {"groups/evicted_frac": evicted_all / max(generated_all, 1.0), "time/generation_rounds": float(round_index + 1),
                   # groups of the batch that had to be filled with zero-variance ones (rounds ran out)
                   "groups/filled_frac": short_all / (target * self.accelerator.num_processes)}
        return [g for g, _ in chosen], torch.stack([r for _, r in chosen]), failures, metrics

    def _all_ranks(self, flag: bool) -> bool:
        """Is ``flag`` true on every rank? (A collective: every rank must call it.)"""
        if self.accelerator.num_processes == 1:
            return flag
        return bool(self._gather(torch.tensor([float(flag)])).min() > 0)

    def step(self, step: int, problems: list[dict]) -> dict[str, float]:
        """One RLVR step on this rank's share of ``problems`` (the module docstring's box); returns the
        step's metrics."""
        timer = PhaseTimer()
        groups, rewards, failures, sampling_metrics = self._sample_groups(step, problems, timer)  # generate -> verify
        completions = [c for group in groups for c in group]
        with timer("advantages"):
            exponents = self._exponents(step)
            rollout_advantage = self._advantages(step, rewards, completions, exponents)
        self.engine.sleep()  # the KV cache is not needed until the next generation: free it for the update
        with timer("logprob"):
            tokens = self._old_policy(completions)
        with timer("shape"):
            tokens, shaping_diagnostics = shaping.apply(self.stages, {**tokens, "rollout_advantage": rollout_advantage.flatten(),
                                                                      "advantage": rollout_advantage.reshape(-1, 1) * tokens["response_mask"]},
                                                        self.config)
        actor = self._update(step, tokens, timer)
        with timer("weight_sync"):
            self.engine.wake_up()
            push_weights(self.engine, self.updater.model)
        rollouts = self._per_rollout(groups, rewards, completions, tokens, shaping_diagnostics)
        return self._metrics(step, rollouts, {**actor, **self.updater.take_padding_statistics()}, failures, exponents,
                             sampling_metrics, timer)

    def _advantages(self, step: int, rewards: torch.Tensor, completions: list, exponents: dict[str, float]) -> torch.Tensor:
        """The estimator's advantage of each rollout, ``(prompts, G)``, with the context it asks for
        (``advantages.CONTEXT_PARAMETERS``): the step's rewards over every rank, the step, response lengths."""
        algorithm = self.config.algorithm
        wanted = estimators.context_parameters(algorithm.estimator)
        context = estimators.context_for(
            algorithm.estimator,
            batch_rewards=self._gather(rewards) if "batch_rewards" in wanted else None,  # a collective: every rank asks
            step=step, total_steps=self.total_steps,
            response_lengths=torch.tensor([float(len(c.response_ids)) for c in completions]).view_as(rewards),
        )
        return estimators.compute(algorithm.estimator, rewards, **{**algorithm.estimator_params(), **exponents}, **context)

    def _old_policy(self, completions: list) -> dict[str, torch.Tensor]:
        """The rollouts as named per-token tensors (``shaping.TENSORS``) with the sampling policy's
        log-probs and entropies, the engine's log-probs, and the frozen reference's when a KL penalty
        asks for them. With ``old_logprobs_from_update`` the first mini-batch's rows stay 0 here and the
        update's first forward fills them in."""
        # The engine's own log-probs of what it sampled, when it reports them (both built-in engines do).
        engine_reported = all(c.response_logprobs is not None or not c.response_ids for c in completions)
        tensors = collate(completions, self.tokenizer.pad_token_id, with_engine_logprobs=engine_reported)
        batch = RolloutBatch(tensors["input_ids"], tensors["attention_mask"], tensors["response_mask"])
        old_logprobs, entropy = self.updater.logprobs(batch, first_row=self.mini_batch_rows if self.old_logprobs_from_update else 0)
        named = {**tensors, "response_mask": batch.response_mask.float(), "loss_mask": batch.response_mask,
                 "old_logprobs": old_logprobs, "entropy": entropy,
                 "response_lengths": torch.tensor([len(c.response_ids) for c in completions]),
                 "truncated": torch.tensor([c.finish_reason == "length" for c in completions])}
        if self.reference is not None:
            named["ref_logprobs"] = self.updater.logprobs(batch, self.reference)[0]
        return named

    def _update(self, step: int, tokens: dict[str, torch.Tensor], timer: PhaseTimer) -> dict[str, float]:
        """The PPO update on the shaped advantages, with the diagnostics that need the policy around it:
        the sign-split gradient norms before it (at the sampling policy) and the log-prob increment of
        the rollouts after it (``mean_logprob_after``, added to ``tokens``)."""
        config = self.config
        batch = RolloutBatch(tokens["input_ids"], tokens["attention_mask"], tokens["loss_mask"])
        metrics = {}
        if config.log.sign_grad_norm_every and step % config.log.sign_grad_norm_every == 0:
            with timer("sign_gradient"):  # before the update: at the sampling policy, where the ratio is 1
                metrics.update(self.updater.sign_gradient_norms(batch, tokens["advantage"]))
        with timer("update"):
            # With old_logprobs_from_update, the first mini-batch's rows of old_logprobs and entropy are filled here.
            metrics.update(self.updater.update(batch, tokens["advantage"], tokens["old_logprobs"], self.mini_batch_rows,
                                               tokens.get("ref_logprobs"),
                                               old_entropy=tokens["entropy"] if self.old_logprobs_from_update else None))
        if config.log.logprob_increment and step % config.log.logprob_increment_every == 0:
            with timer("logprob_after"):
                new_logprobs, _ = self.updater.logprobs(RolloutBatch(tokens["input_ids"], tokens["attention_mask"], tokens["response_mask"].long()))
                tokens["mean_logprob_after"] = mean_response_logprob(new_logprobs, tokens["response_mask"])
        return metrics

    def _per_rollout(self, groups: list, rewards: torch.Tensor, completions: list, tokens: dict[str, torch.Tensor],
                     shaping_diagnostics: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The per-rollout quantities the diagnostics read (``asymrl.metrics``), by name."""
        mask, G = tokens["response_mask"], self.group_size
        distinct_correct = torch.tensor([float(diagnostics.distinct_correct([c.text for c in group], (group_rewards > 0.5).tolist()))
                                         for group, group_rewards in zip(groups, rewards)])
        rollouts = {
            "rewards": rewards.flatten(),
            "advantage": tokens["rollout_advantage"],
            "entropy_sum": (tokens["entropy"] * mask).sum(1),
            "response_tokens": mask.sum(dim=1),
            "mean_logprob": mean_response_logprob(tokens["old_logprobs"], mask),
            "truncated": tokens["truncated"].float(),
            "prompt_tokens": torch.tensor([float(len(c.prompt_ids)) for c in completions]),
            "group_distinct_correct": distinct_correct.repeat_interleave(G),
            **shaping_diagnostics,
        }
        if "mean_logprob_after" in tokens:
            rollouts["mean_logprob_after"] = tokens["mean_logprob_after"]
        if "engine_logprobs" in tokens:
            rollouts.update(mismatch_per_rollout(tokens["old_logprobs"], tokens["engine_logprobs"], mask))
        return rollouts

    def _metrics(self, step: int, rollouts: dict[str, torch.Tensor], actor: dict[str, float], failures: dict[str, int],
                 exponents: dict[str, float], sampling_metrics: dict[str, float], timer: PhaseTimer) -> dict[str, float]:
        """The step's metrics over all ranks: the diagnostics of the per-rollout quantities, the
        update's and the reward's scalars, the exponents (and the entropy controller's next alpha+),
        sampling rounds and phase times."""
        config, G = self.config, self.group_size
        gathered = {name: values.view(-1, G) for name, values in diagnostics.gather_named(rollouts, self._gather).items()}
        out = diagnostics.compute_diagnostics(gathered, step, config)
        # Scalars of each rank, in one collective whatever keys each rank holds (reward failures summed).
        reward_failures = {f"reward/{name}": float(count) for name, count in failures.items()}
        out.update(diagnostics.reduce_rank_metrics({**actor, **reward_failures}, summed=set(reward_failures)))
        out.update({f"alpha/{name.removeprefix('alpha_')}": value for name, value in exponents.items()})
        if config.algorithm.alpha_schedule == "entropy_target":  # this step's entropy sets the next step's alpha+
            algorithm = config.algorithm
            self.state["alpha_controlled"] = {"alpha_pos": modulation.entropy_controller_step(
                exponents["alpha_pos"], out["entropy/all"], algorithm.target_entropy, algorithm.alpha_controller_rate,
                *algorithm.alpha_pos_range)}
        out.update(sampling_metrics)
        out.update({f"time/{k}": v for k, v in timer.seconds.items()})
        out["time/generate_tokens_per_s"] = float(gathered["response_tokens"].sum()) / max(timer.seconds["generate"], 1e-9)
        out["time/step"] = sum(timer.seconds.values())
        out["time/train_tokens_per_s"] = float((gathered["response_tokens"] + gathered["prompt_tokens"]).sum()) * config.train.ppo_epochs / max(timer.seconds["update"], 1e-9)
        return out

    def _old_logprobs_from_update(self) -> bool:
        """Does the update's first forward supply the first mini-batch's old log-probs and entropies
        (``train.old_logprobs_from_update``)? Not where a shaping stage reads them before the update
        or changes the tokens that forward computes them for (``shaping.Stage.needs_old_pass``), nor
        where dropout makes the update's forward differ from the sampling policy."""
        needs_old_pass = any(stage.needs_old_pass for stage in self.stages)
        return self.config.train.old_logprobs_from_update and not needs_old_pass and not has_dropout(self.updater.model)

    # -- validation --------------------------------------------------------------------------------

    def _exponents(self, step: int) -> dict[str, float]:
        """alpha_pos / alpha_neg of the estimator at ``step`` under ``algorithm.alpha_schedule`` (empty
        when constant: the estimator's configured values apply as they are)."""
        algorithm = self.config.algorithm
        if algorithm.alpha_schedule == "constant":
            return {}
        params = {**estimators.parameters(algorithm.estimator), **algorithm.estimator_params()}
        start = {name: float(params[name]) for name in ("alpha_pos", "alpha_neg") if name in params}
        end = {name: value for name, value in (("alpha_pos", algorithm.alpha_pos_end), ("alpha_neg", algorithm.alpha_neg_end))
               if value is not None}
        return modulation.exponents_at(step, self.total_steps, algorithm.alpha_schedule, start, end, self.state["alpha_controlled"])

    def validate(self, sampled: bool = False) -> dict[str, float]:
        """Greedy accuracy on the validation split (each rank scores a slice), plus sampled accuracy
        (Avg@n at the rollout temperature) when ``sampled`` and ``eval.sampled_n > 0``."""
        config, acc = self.config, self.accelerator
        local = self._rank_slice(self.val_problems)
        prompts = [self._prompt(p) for p in local]
        max_new = config.rollout.val_max_new_tokens or config.rollout.max_new_tokens
        results = {}
        runs = [("val/accuracy", SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new, stop=list(config.rollout.stop)))]
        if sampled and config.eval.sampled_n > 0:
            runs.append(("val/sampled_accuracy", SamplingParams(
                n=config.eval.sampled_n, temperature=config.rollout.temperature, top_p=config.rollout.top_p,
                max_new_tokens=max_new, stop=list(config.rollout.stop), seed=config.train.seed + 7 * acc.process_index,
            )))
        for key, params in runs:
            groups = self.engine.generate(prompts, params) if prompts else []
            responses = [c.text for group in groups for c in group]
            examples = [p for p, group in zip(local, groups) for _ in group]
            scores, _ = self._rewards(responses, examples)
            totals = torch.tensor([sum(scores), float(len(scores))])
            if acc.num_processes > 1:
                totals = acc.reduce(totals.to(acc.device), reduction="sum").cpu()
            results[key] = float(totals[0] / totals[1].clamp_min(1))
        return results

    # -- the loop ----------------------------------------------------------------------------------

    def train(self) -> dict:
        """Run to ``total_steps`` (or ``max_wall_s``), validating and checkpointing; returns the summary."""
        config, acc = self.config, self.accelerator
        start_step = self._maybe_resume()
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            config.save(self.run_dir / "config.yaml")
        self.log.start(config.log.project, config.to_dict(), resumed_at=start_step if start_step else None)
        started = time.time() - self.state["wall_s"]
        if start_step == 0 and config.eval.at_start:
            self._validate_and_keep_best(0, sampled=True)
        progress = tqdm(range(start_step, self.total_steps), initial=start_step, total=self.total_steps,
                        desc="train", disable=not (acc.is_main_process and config.log.progress_bar), dynamic_ncols=True)
        step = start_step
        for step in progress:
            metrics = self.step(step, self.sampler.next_batch())
            self.state["step"] = step + 1
            self.state["wall_s"] = time.time() - started
            out_of_time = config.train.max_wall_s and self.state["wall_s"] >= config.train.max_wall_s
            last = step + 1 == self.total_steps or out_of_time
            # The last step always validates, once, and measures sampled accuracy too (beside greedy).
            if last or (config.eval.every_steps and (step + 1) % config.eval.every_steps == 0):
                metrics.update(self._validate_and_keep_best(step + 1, log=False, sampled=last))
            self.log.log(step + 1, metrics)
            progress.set_postfix({k.split("/")[-1]: f"{metrics[k]:.3f}" for k in ("reward/accuracy", "entropy/all", "val/accuracy") if k in metrics})
            if config.train.save_every and ((step + 1) % config.train.save_every == 0 or out_of_time):
                self._save()
            if out_of_time:
                acc.print(f"train.max_wall_s={config.train.max_wall_s} reached after step {step + 1}: stopping")
                break
        return self._finish()

    def _validate_and_keep_best(self, step: int, log: bool = True, sampled: bool = False) -> dict[str, float]:
        results = self.validate(sampled)
        accuracy = results["val/accuracy"]
        if step == 0:  # before any training (eval.at_start); a run without it has no initial accuracy
            self.state["initial_val_accuracy"] = accuracy
            self.state["initial_val_sampled_accuracy"] = results.get("val/sampled_accuracy")
        self.state["final_val_accuracy"] = accuracy
        if "val/sampled_accuracy" in results:
            self.state["final_val_sampled_accuracy"] = results["val/sampled_accuracy"]
        if self.state["best_val_accuracy"] is None or accuracy > self.state["best_val_accuracy"]:
            self.state["best_val_accuracy"], self.state["best_step"] = accuracy, step
            self.updater.save_pretrained(self.run_dir / "best", self.tokenizer)
        if log:
            self.log.log(step, results)
        return results

    def _save(self) -> None:
        state = {**self.state, "sampler": self.sampler.state_dict()}
        save_checkpoint(self.accelerator, self.run_dir, self.state["step"], state, self.config.train.keep_last)

    def _maybe_resume(self) -> int:
        path = resolve_resume(self.config.train.resume, self.run_dir)
        if path is None:
            return 0
        saved = load_checkpoint(self.accelerator, path)
        self.sampler.load_state_dict(saved.pop("sampler"))
        self.state.update(saved)
        push_weights(self.engine, self.updater.model)
        self.accelerator.print(f"resumed from {path} at step {self.state['step']}")
        return self.state["step"]

    def _weights_in_sync(self) -> bool:
        """Do all ranks hold the same weights? (A silently unsynchronised launch would not.)"""
        checksum = sum(float(t.double().sum()) for _, t in iter_full_parameters(self.updater.model))
        sums = self._gather(torch.tensor([checksum], dtype=torch.float64))
        return bool(torch.allclose(sums, sums[0].expand_as(sums), rtol=1e-9, atol=0))

    def _finish(self) -> dict:
        if self.config.train.save_final:
            self.updater.save_pretrained(self.run_dir / "final", self.tokenizer)
        summary = {
            "steps": self.state["step"],
            "total_steps": self.total_steps,
            "wall_s": round(self.state["wall_s"], 2),
            "initial_val_accuracy": self.state["initial_val_accuracy"],
            "final_val_accuracy": self.state["final_val_accuracy"],
            "best_val_accuracy": self.state["best_val_accuracy"],
            "best_step": self.state["best_step"],
            "initial_val_sampled_accuracy": self.state.get("initial_val_sampled_accuracy"),
            "final_val_sampled_accuracy": self.state.get("final_val_sampled_accuracy"),
            "estimator": self.config.algorithm.estimator,
            "world_size": self.accelerator.num_processes,
            "weights_in_sync": self._weights_in_sync(),
            "run_dir": str(self.run_dir),
        }
        if self.accelerator.is_main_process:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        self.log.close()
        self.reward.close()
        self.engine.close()
        release_process_group()
        return summary
