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
