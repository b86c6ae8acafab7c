"""The rollout-engine interface shared by every engine, what each is built from, and batching to tensors.

Log-probs an engine returns are those of the distribution it sampled from: ``log_softmax(logits /
temperature)`` of the full vocabulary (top-p truncation not renormalised), which is exactly what the
trainer recomputes (``asymrl.logprobs``), so the two can be compared token by token. Greedy decoding
(temperature 0) reports ``log_softmax(logits)``.
"""

from __future__ import annotations

import bisect

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Iterable, Union

import torch

from asymrl.prompts import apply_chat_template

Prompt = Union[str, list[int], list[dict]]  # rendered text, token ids, or chat messages


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    logprobs: bool = True  # False: completions carry no log-probs (evaluation), and no time is spent on them


@dataclass
class Completion:
    """One sampled response. ``response_ids`` include the EOS token when generation ended on it."""

    prompt_ids: list[int]
    response_ids: list[int]
    response_logprobs: list[float] | None
    finish_reason: str  # "eos" | "stop" | "length"
    text: str

    @property
    def response_mask(self) -> list[int]:
        """1 for every response token that is trained on (all generated tokens, EOS included)."""
        return [1] * len(self.response_ids)


@dataclass
class EngineSetup:
    """What every engine is built from, whichever it is; an engine's own settings are its ``Options``."""

    model_dir: Union[str, Path]
    dtype: str = "float32"
    device: str = "cpu"
    seed: int = 0
    max_model_len: int = 2048  # longest prompt + response the engine must hold
    use_chat_template: bool = True  # for prompts given as chat messages
    enable_thinking: bool | None = None


@dataclass
class NoOptions:
    """The options of an engine that has none of its own."""


class RolloutEngine(ABC):
    """Generates G completions per prompt and follows the trainer's weights.

    An engine is built as ``Engine(setup, options)``; its ``Options`` dataclass is its config section
    ``rollout.<name>`` once the class is registered (``asymrl.rollout.register``).
    """

    Options: ClassVar[type] = NoOptions
    tokenizer = None

    @abstractmethod
    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions for each prompt, as ``[prompt][sample]``."""

    @abstractmethod
    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load new policy weights (names as in the transformers state dict) in place."""

    def sleep(self) -> None:
        """Free generation memory during the update, where the engine supports it."""

    def wake_up(self) -> None:
        """Undo :meth:`sleep`."""

    def close(self) -> None:
        """Release the engine's resources."""

    def prompt_ids(self, prompt: Prompt, *, use_chat_template: bool = True, enable_thinking: bool | None = None) -> list[int]:
        """Token ids of a prompt given as ids, rendered text, or chat messages."""
        if isinstance(prompt, list) and (not prompt or isinstance(prompt[0], int)):
            return list(prompt)
        if isinstance(prompt, list):
            text = apply_chat_template(self.tokenizer, prompt, enable_thinking)
        else:
            text = prompt
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def collate(completions: list[Completion], pad_token_id: int, with_engine_logprobs: bool = False) -> dict[str, torch.Tensor]:
    """Right-padded tensors for the training forward pass, one row per completion.

    ``input_ids`` = prompt + response; ``response_mask`` is 1 on response tokens. With
    ``with_engine_logprobs``, ``engine_logprobs`` holds the engine's log-prob of each response token
    at that token's position (0 elsewhere), for whatever compares them with the trainer's.
    """
    lengths = [len(c.prompt_ids) + len(c.response_ids) for c in completions]
    width = max(lengths)
    rows = len(completions)
    input_ids = torch.full((rows, width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((rows, width), dtype=torch.long)
    response_mask = torch.zeros((rows, width), dtype=torch.long)
    for row, completion in enumerate(completions):
        start, end = len(completion.prompt_ids), lengths[row]
        input_ids[row, :end] = torch.tensor(completion.prompt_ids + completion.response_ids)
        attention_mask[row, :end] = 1
        response_mask[row, start:end] = 1
    tensors = {"input_ids": input_ids, "attention_mask": attention_mask, "response_mask": response_mask}
    if with_engine_logprobs:
        tensors["engine_logprobs"] = _engine_logprobs(completions, width)
    return tensors


def _engine_logprobs(completions: list[Completion], width: int) -> torch.Tensor:
    """The engine's log-prob of each response token at that token's position, 0 elsewhere."""
    engine_logprobs = torch.zeros((len(completions), width), dtype=torch.float32)
    for row, completion in enumerate(completions):
        if not completion.response_ids:
            continue
        if completion.response_logprobs is None:
            raise ValueError("collate(with_engine_logprobs=True): the engine returned no log-probs for a completion")
        start = len(completion.prompt_ids)
        engine_logprobs[row, start : start + len(completion.response_ids)] = torch.tensor(completion.response_logprobs)
    return engine_logprobs


def finish(response_ids: list[int], tokenizer, eos_ids: set[int], stop: list[str], max_new_tokens: int) -> tuple[list[int], str, str]:
    """Cut a raw generation at its first EOS or stop string; returns (ids, text, finish reason).

    At a stop string the ids end with the token that completes it (as vLLM's do) and the text just
    before it: what a batched generate() appended to a stopped row (padding) is not its response."""
    for index, token in enumerate(response_ids):
        if token in eos_ids:
            ids = response_ids[: index + 1]
            return ids, tokenizer.decode(ids[:-1], skip_special_tokens=True), "eos"
    text = tokenizer.decode(response_ids, skip_special_tokens=True)
    found = first_stop(text, stop)
    if found is not None:
        at, marker = found
        # The shortest prefix whose text holds the marker (a longer prefix holds it too: bisection).
        end = bisect.bisect_left(range(1, len(response_ids) + 1), True,
                                 key=lambda k: marker in tokenizer.decode(response_ids[:k], skip_special_tokens=True)) + 1
        return response_ids[:end], text[:at], "stop"
    return response_ids, text, "length" if len(response_ids) >= max_new_tokens else "eos"


def first_stop(text: str, stop: list[str]) -> tuple[int, str] | None:
    """Where the earliest of the ``stop`` strings starts in ``text``, and which it is (None: none is in it)."""
    found = [(text.index(marker), marker) for marker in stop if marker in text]
    return min(found) if found else None
