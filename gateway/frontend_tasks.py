"""Chat frontends' own task requests (a chat title, tags, follow-up suggestions...) told apart from
questions, and their cheap extractive answers.

Open WebUI sends, beside each chat turn, requests whose one user message is a prompt template that
starts with ``### Task:`` and embeds the chat so far in ``<chat_history>`` as ``USER: ...`` /
``ASSISTANT: ...`` lines (``open_webui/config.py``, ``DEFAULT_*_GENERATION_PROMPT_TEMPLATE``).
It parses the answers as JSON: it cuts the text from the first ``{`` to the last ``}`` and reads
``title``, ``tags``, ``follow_ups`` or ``queries`` (``open_webui/utils/middleware.py``,
``background_tasks_handler``; ``open_webui/utils/task.py``, ``parse_follow_ups``). Older frontends
send plain-text title prompts ("Create a concise, 3-5 word title...").

Such a request is not a question about the documents: retrieving for it wastes a search and a long
generation, and its instruction-like wording trips the injection rail. This module only recognises
them (:func:`detect_task`) and answers from the conversation's own words (:func:`extractive_answer`);
:mod:`gateway.task_answers` decides how a request is answered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["JSON_KEYS", "TASK_KINDS", "FrontendTask", "TaskKind", "detect_task", "extractive_answer", "neutral_answer",
           "parse_task_answer"]

TaskKind = Literal["title", "tags", "follow_ups", "queries", "autocomplete", "image_prompt", "emoji", "other"]
TASK_KINDS: tuple[TaskKind, ...] = ("title", "tags", "follow_ups", "queries", "autocomplete", "image_prompt",
                                    "emoji", "other")

# the JSON key each kind answers with (Open WebUI's templates); "emoji" and "other" answer in text
JSON_KEYS: dict[TaskKind, str] = {"title": "title", "tags": "tags", "follow_ups": "follow_ups",
                                  "queries": "queries", "autocomplete": "text", "image_prompt": "prompt"}

_TASK_HEADER = re.compile(r"^\s*#{2,4}\s*task\s*:", re.IGNORECASE)
# a "### Task:" prompt is a frontend's only when it also carries the chat or asks for JSON: a person
# who types "### Task:" into a chat still gets an answer from the documents
_TASK_BODY = re.compile(r"<chat_history>|\bjson\b", re.IGNORECASE)
_LEGACY_TITLE = re.compile(
    r"^\s*(?:please\s+)?(?:create|generate|write)\s+a\s+(?:concise|short|brief)\b[^\n]{0,60}?\btitle\b",
    re.IGNORECASE)
_LEGACY_EMOJI = re.compile(r"^\s*your task is to reflect the speaker's likely facial expression", re.IGNORECASE)
_MERGE = re.compile(r"^\s*you have been provided with a set of responses from various models", re.IGNORECASE)

# which task a "### Task:" prompt is, from its description (the text before "### Guidelines");
# the first that matches wins, so the specific ones come first
_KIND_PATTERNS: tuple[tuple[TaskKind, re.Pattern[str]], ...] = (
    ("autocomplete", re.compile(r"auto-?complet", re.IGNORECASE)),
    ("follow_ups", re.compile(r"follow[\s_-]?ups?|might (?:naturally )?(?:send|ask) next", re.IGNORECASE)),
    ("queries", re.compile(r"search quer(?:y|ies)|retrieval quer(?:y|ies)", re.IGNORECASE)),
    ("image_prompt", re.compile(r"image generation", re.IGNORECASE)),
    ("tags", re.compile(r"\btags?\b", re.IGNORECASE)),
    ("title", re.compile(r"\btitle\b", re.IGNORECASE)),
    ("emoji", re.compile(r"\bemoji\b", re.IGNORECASE)),
)

_HISTORY_BLOCK = re.compile(r"<chat_history>\s*(.*?)\s*</chat_history>", re.IGNORECASE | re.DOTALL)
_TURN = re.compile(r"^(USER|ASSISTANT|SYSTEM):[ \t]?", re.MULTILINE)
_LEGACY_PROMPT = re.compile(r"^(?:prompt|text|query|question):\s*(.+)", re.IGNORECASE | re.MULTILINE | re.DOTALL)
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


@dataclass(frozen=True)
class FrontendTask:
    """A recognised task request: its kind, whether it wants JSON, and the chat it is about as
    ``(role, text)`` turns (roles ``user`` / ``assistant``)."""

    kind: TaskKind
    wants_json: bool
    history: tuple[tuple[str, str], ...]

    @property
    def user_texts(self) -> list[str]:
        return [text for role, text in self.history if role == "user" and text.strip()]

    def with_user_texts(self, texts: Sequence[str]) -> FrontendTask:
        """The same task with its user turns replaced, in order (e.g. by their PII-redacted forms)."""
        replaced = iter(texts)
        turns = tuple((role, next(replaced) if role == "user" and text.strip() else text)
                      for role, text in self.history)
        return FrontendTask(self.kind, self.wants_json, turns)


def _kind_of(prompt: str) -> TaskKind:
    description = re.split(r"#{2,4}\s*\**\s*(?:guidelines|instructions)", prompt, maxsplit=1, flags=re.IGNORECASE)[0]
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(description[:600]):
            return kind
    return "other"


def _parse_history(prompt: str) -> tuple[tuple[str, str], ...]:
    block = _HISTORY_BLOCK.search(prompt)
    if block is None:
        legacy = _LEGACY_PROMPT.search(prompt)
        return (("user", legacy.group(1).strip()),) if legacy else ()
    text = block.group(1)
    marks = list(_TURN.finditer(text))
    turns = []
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        role = mark.group(1).lower()
        if role != "system":
            turns.append((role, text[mark.end():end].strip()))
    return tuple(turns)


def detect_task(turns: Sequence[tuple[str, str]]) -> FrontendTask | None:
    """The frontend task the request is, from its ``(role, text)`` messages; None for a question.

    Only the last user message decides. Without a ``<chat_history>`` block, the request's earlier
    messages are the chat the task is about (frontends that send the conversation, then the task).
    """
    users = [i for i, (role, _) in enumerate(turns) if role == "user"]
    if not users:
        return None
    last = users[-1]
    prompt = turns[last][1]
    if _TASK_HEADER.match(prompt) and _TASK_BODY.search(prompt):
        kind = _kind_of(prompt)
    elif _LEGACY_TITLE.match(prompt):
        kind = "title"
    elif _LEGACY_EMOJI.match(prompt):
        kind = "emoji"
    elif _MERGE.match(prompt):
        kind = "other"
    else:
        return None
    history = _parse_history(prompt) or tuple((r, t) for r, t in turns[:last] if r in ("user", "assistant"))
    wants_json = kind in JSON_KEYS and ("json" in prompt.lower() or f'"{JSON_KEYS[kind]}"' in prompt)
    return FrontendTask(kind, wants_json, history)


# ---------------------------------------------------------------- extractive answers

_LEAD_INS = re.compile(
    r"^(?:(?:please|hi|hello|hey)[,!]?\s+)*(?:(?:can|could|would) you\s+)?"
    r"(?:tell me (?:about|more about)|explain|describe|what (?:is|are|was|were|does|do)|how (?:does|do|is|are|can)"
    r"|why (?:does|do|is|are)|who (?:is|are|was)|when (?:is|was|did)|where (?:is|are))\s+(?:an?\s+|the\s+)?",
    re.IGNORECASE)
_MARKUP = re.compile(r"[`*#>\[\]{}\"“”‘’()<>|]")
_TITLE_WORDS = 5
_TITLE_CHARS = 50


def _title_from(text: str) -> str:
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = _MARKUP.sub(" ", line)
    line = _LEAD_INS.sub("", line.strip())
    words = line.split()[:_TITLE_WORDS if not _HANGUL.search(line) else 4]
    title = " ".join(words).rstrip("?!.,:;。？！ ")
    if len(title) > _TITLE_CHARS:
        title = title[:_TITLE_CHARS].rsplit(" ", 1)[0] or title[:_TITLE_CHARS]
    return title[:1].upper() + title[1:] if title else ""


_SOURCES_LINE = re.compile(r"^\s*(?:sources|references)\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
_NUMBERED_TITLE = re.compile(r"\[\d{1,2}\]\s*(?:\*\*)?([^;*\n:]+)")


def _source_titles(answer: str) -> list[str]:
    """Titles named in a ragd answer's ``Sources:`` line or ``References:`` list."""
    titles: list[str] = []
    for match in _SOURCES_LINE.finditer(answer):
        tail = match.group(1) or answer[match.end():]
        for found in _NUMBERED_TITLE.finditer(tail):
            title = found.group(1).strip(" .-—")
            if title and title not in titles:
                titles.append(title)
    return titles


def _follow_ups(task: FrontendTask) -> list[str]:
    answer = next((text for role, text in reversed(task.history) if role == "assistant"), "")
    users = task.user_texts
    korean = bool(users and _HANGUL.search(users[-1]))
    asked = {" ".join(u.lower().split()) for u in users}
    suggestions = []
    for title in _source_titles(answer)[:3]:
        text = f"{title}에 대해 더 자세히 알려 주세요." if korean else f"Tell me more about {title}."
        if " ".join(text.lower().split()) not in asked:
            suggestions.append(text)
    return suggestions


def _text_answer(task: FrontendTask) -> str | list[str]:
    users = task.user_texts
    first, last = (users[0], users[-1]) if users else ("", "")
    if task.kind == "title":
        return _title_from(first) or ("새 대화" if _HANGUL.search(first) else "New chat")
    if task.kind == "tags":
        return ["General"]
    if task.kind == "follow_ups":
        return _follow_ups(task)
    if task.kind == "queries":
        return [" ".join(last.split())] if last.strip() else []
    if task.kind == "image_prompt":
        return " ".join(last.split())
    if task.kind == "emoji":
        return "💬"
    return ""


def extractive_answer(task: FrontendTask) -> str:
    """The answer built from the chat's own words, in the form the task asks for: a title from the
    first user message's words, ``["General"]`` as tags (the template's own rule for a short
    chat), follow-ups from the titles of the sources the last answer names, the last question as
    the search query. No model runs."""
    value = _text_answer(task)
    if task.wants_json:
        return json.dumps({JSON_KEYS[task.kind]: value}, ensure_ascii=False)
    return value if isinstance(value, str) else ", ".join(value)


def neutral_answer(task: FrontendTask) -> str:
    """What a task is answered when a user turn it embeds is refused by the input rails: nothing of
    that turn is echoed back."""
    values: dict[TaskKind, str | list[str]] = {"title": "New chat", "tags": ["General"], "image_prompt": "",
                                               "autocomplete": "", "emoji": "💬", "other": ""}
    value = values.get(task.kind, [])
    if task.wants_json:
        return json.dumps({JSON_KEYS[task.kind]: value}, ensure_ascii=False)
    return value if isinstance(value, str) else ""


def parse_task_answer(task: FrontendTask, text: str) -> str | None:
    """A generated answer as the frontend will read it (compact JSON), or None when the frontend
    could not use it: no JSON object between the first ``{`` and the last ``}``, or not the key and
    type it reads."""
    if not task.wants_json:
        cleaned = text.strip().strip('"').strip()
        if task.kind in ("title", "emoji") and ("\n" in cleaned or len(cleaned) > 200):
            return None
        return cleaned or None
    key = JSON_KEYS[task.kind]
    try:
        data = json.loads(text[text.find("{"): text.rfind("}") + 1])
    except ValueError:
        return None
    value = data.get(key) if isinstance(data, dict) else None
    expects_list = task.kind in ("tags", "follow_ups", "queries")
    if expects_list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return None
    if not expects_list and not isinstance(value, str):
        return None
    return json.dumps({key: value}, ensure_ascii=False)
