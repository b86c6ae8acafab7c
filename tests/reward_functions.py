"""Rewards that the reward tests and the trainer test send to worker processes by reference
(a module of their own, so that a worker imports nothing else)."""

from __future__ import annotations

import os
import time


def scripted(response: str, example: dict, bonus: float = 0.0):
    """Exact match plus ``bonus``; a response naming a misbehaviour does it instead."""
    if response == "raise":
        raise ValueError("no answer in this response")
    if response == "hang":
        time.sleep(3600)
    if response == "exit":
        os._exit(3)  # the worker dies in the call, as under its memory cap
    if response == "none":
        return None
    return float(response == example["answer"]) + bonus


def constant(response: str, example: dict, value: float = 0.0) -> float:
    """The same reward for every response."""
    return value


def needs_scale(response: str, example: dict, scale: float) -> float:
    """A reward with a required parameter."""
    return scale
