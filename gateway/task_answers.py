"""How a frontend's task request (:mod:`gateway.frontend_tasks`) is answered: never retrieved for,
never cached, never refused for the template's wording.

The request is recognised before the input rails. Its template is the frontend's; the user turns it
quotes are this conversation's questions, which met the rails when they were asked. So the rails run
on those quoted turns only (memoized decisions: usually free): a sure block, as for an earlier turn
of a chat, answers the task neutrally (nothing of that turn is echoed), and PII they redact stays
redacted in the answer and in what a model is shown.

Then, by the ``task_answers`` setting: ``extractive`` builds the answer from the chat's own words
(no model); ``generate`` asks the generator for plain generation of the task, keeps its answer when
the frontend can parse it and the output rails pass it, and otherwise falls back to the extractive
answer; ``auto`` generates when a real model server is configured (``generator_url``) and extracts
on the small CPU stand-in. A task no extractive answer exists for (an unknown ``### Task:``) is
generated in every mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.frontend_tasks import FrontendTask, extractive_answer, neutral_answer, parse_task_answer
from services.contracts import ChatMessage, GenerationParams, GuardCheckRequest, Usage
from services.protocols import Generator, Guard

__all__ = ["TASK_ANSWER_MODES", "TaskAnswer", "TaskAnswerMode", "answer_task"]

TaskAnswerMode = Literal["auto", "extractive", "generate"]
TASK_ANSWER_MODES: tuple[TaskAnswerMode, ...] = ("auto", "extractive", "generate")
MAX_TASK_TOKENS = 256


@dataclass(frozen=True)
class TaskAnswer:
    content: str
    how: Literal["extractive", "generated", "neutral"]
    usage: Usage


async def _generated(task: FrontendTask, prompt: str, params: GenerationParams, generator: Generator,
                     guard: Guard, tenant: str) -> tuple[str, Usage] | None:
    """The generator's answer to the task prompt when the frontend can use it and the output rails
    pass it; None otherwise."""
    params = params.model_copy(update={"max_tokens": min(params.max_tokens, MAX_TASK_TOKENS)})
    completion = await generator.complete([ChatMessage(role="user", content=prompt)], params)
    parsed = parse_task_answer(task, completion.text)
    if parsed is None:
        return None
    decision = await guard.check(GuardCheckRequest(kind="output", text=parsed, tenant=tenant))
    if decision.action == "block":
        return None
    if decision.action == "redact":
        return parse_task_answer(task, decision.text) or parsed, completion.usage
    return parsed, completion.usage


def _redacted_prompt(prompt: str, originals: list[str], screened: list[str]) -> str:
    for original, text in zip(originals, screened, strict=True):
        if original != text:
            prompt = prompt.replace(original, text)
    return prompt


async def answer_task(task: FrontendTask, prompt: str, *, screened: list[str] | None, generate: bool,
                      params: GenerationParams, generator: Generator, guard: Guard, tenant: str) -> TaskAnswer:
    """The task's answer. ``screened`` is its user turns as the input rails left them, None when a
    rail refused one of them; ``generate`` is the resolved mode."""
    if screened is None:
        return TaskAnswer(neutral_answer(task), "neutral", Usage())
    originals = task.user_texts
    task = task.with_user_texts(screened)
    if generate or task.kind == "other":
        generated = await _generated(task, _redacted_prompt(prompt, originals, screened), params, generator,
                                     guard, tenant)
        if generated is not None:
            return TaskAnswer(generated[0], "generated", generated[1])
    return TaskAnswer(extractive_answer(task), "extractive", Usage())
