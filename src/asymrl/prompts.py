"""What the policy sees: a problem filled into the prompt template, rendered through the chat template.

Its own module because the data stage, the rollout engines and the toy task's builder all render
prompts, and the data stage also builds the toy task: keeping rendering apart keeps that acyclic.
"""

from __future__ import annotations


def apply_chat_template(tokenizer, messages: list[dict], enable_thinking: bool | None = None) -> str:
    """Chat messages rendered for generation (``enable_thinking`` passed only when set: Qwen3)."""
    extra = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)


def render_prompt(problem: str, tokenizer, template: str, use_chat_template: bool = True, enable_thinking: bool | None = None) -> str:
    """The text the policy sees: ``template`` with ``{problem}`` filled, through the chat template."""
    content = template.replace("{problem}", problem)
    if not use_chat_template:
        return content
    return apply_chat_template(tokenizer, [{"role": "user", "content": content}], enable_thinking)


def context_overflow(longest_prompt: int, max_new_tokens: int, context: int | None, template: str) -> str | None:
    """Why prompts of up to ``longest_prompt`` tokens (rendered through ``template``) with answers of up
    to ``max_new_tokens`` do not fit a model of ``context`` positions, or None when they fit (or the
    model states no limit). Past its positions a model either refuses (vLLM) or generates from
    positions it never saw (transformers only warns): either way no score from it is meaningful."""
    if context is None or longest_prompt + max_new_tokens <= context:
        return None
    return (f"the longest prompt is {longest_prompt} tokens with the prompt template {template!r}, and answers may take "
            f"{max_new_tokens} more: {longest_prompt + max_new_tokens} > the model's {context} positions")
