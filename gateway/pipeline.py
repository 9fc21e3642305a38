"""The request path of one chat turn: rewrite -> input rails -> cache -> retrieve -> generate ->
output rails -> citations -> cache store. Every stage is timed into ``ragd_stage_seconds``."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from cache import CachedAnswer, CacheLookup, CacheScope
from gateway.admission import Ticket, count_refusal
from gateway.openai_schema import Citation
from gateway.remembered import RememberingGuard
from generator.abstention import Abstainer
from generator.packing import ContextPacker
from generator.prompt import (
    PLAIN_SYSTEM_PROMPT,
    build_hardened_messages,
    build_messages,
    cited_numbers,
    plausible_rewrite,
    rewrite_messages,
    template,
)
from guardrails.streaming import guard_stream
from services import telemetry
from services.contracts import (
    AnswerContext,
    ChatMessage,
    Delta,
    GenerationParams,
    GuardCheckRequest,
    GuardDecision,
    RetrieveRequest,
    RetrieveResponse,
    ScoredChunk,
    Usage,
)
from services.errors import ContentPolicyError, DependencyError, DependencyUnavailableError, RagdError
from services.filters import filter_digest
from services.protocols import EpochStore, Generator, Guard, Retriever
from services.telemetry import DEGRADATIONS, stage
from services.text import detect_language

__all__ = ["Answer", "ChatTurn", "Pipeline", "PipelineOptions", "Prepared", "mark_degraded"]

_log = logging.getLogger("ragd.pipeline")
Vector = npt.NDArray[np.float32]


def mark_degraded(degraded: list[str], part: str, *, counted: bool = False) -> None:
    """Note that ``part`` of the answer path is degraded (announced in x-ragd-degraded), once per request, and
    count it in ragd_degradations_total unless whoever failed ``counted`` it already."""
    if part in degraded:
        return
    degraded.append(part)
    if not counted:
        DEGRADATIONS.labels(part).inc()


@dataclass(frozen=True)
class ChatTurn:
    """A validated chat request (the gateway's internal form of the OpenAI request)."""

    tenant: str
    collection: str
    model: str
    question: str
    history: tuple[ChatMessage, ...] = ()
    instructions: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    top_k: int = 4
    filter: dict[str, Any] | None = None  # metadata filter (services/filters.py), validated at the edge
    cache_read: bool = True
    cache_write: bool = True
    retrieval: bool = True  # False: plain generation (the ``ragd-chat`` model): no sources, no cache


@dataclass
class Answer:
    content: str
    citations: list[Citation]
    finish_reason: str
    usage: Usage
    cache: str = "miss"
    degraded: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Prepared:
    """Everything decided before generation starts (so streaming can send its headers first).
    ``degraded`` is the request's list: the output rails may still add to it while the answer streams."""

    turn: ChatTurn
    standalone: str
    degraded: list[str]
    cache: str = "miss"
    answer: Answer | None = None  # set when answered without generating (cache hit or blocked)
    chunks: tuple[ScoredChunk, ...] = ()
    messages: tuple[ChatMessage, ...] = ()
    cache_scope: CacheScope | None = None  # None: the answer is not stored
    ticket: Ticket | None = None  # the generator admission's, held from admission to the end of generation
    abstention: str | None = None  # set when the evidence does not cover the question: the answer, verbatim
    retrieved: tuple[str, ...] = ()  # a decline's retrieval (chunk ids, best first): the evidence it is stored with
    flag_actions: tuple[str, ...] = ()  # the input was flagged: hardened_prompt, skip_cache, strict_output


class AnswerCacheLike(Protocol):
    """The answer cache as the pipeline uses it (:class:`cache.AnswerCache`)."""

    def embed_early(self, question: str, params: GenerationParams) -> asyncio.Future[Vector] | None: ...
    async def lookup(self, scope: CacheScope, question: str, *, read: bool = True,
                     early: Awaitable[Vector] | None = None,
                     evidence: Callable[[], Awaitable[Sequence[str]]] | None = None) -> CacheLookup: ...
    async def lookup_exact(self, scope: CacheScope, question: str) -> CacheLookup | None: ...
    async def wants_retrieval(self, scope: CacheScope, question: str) -> bool: ...
    async def store(self, scope: CacheScope, question: str, answer: CachedAnswer) -> bool: ...
    async def remember(self, scope: CacheScope, question: str, answer: CachedAnswer) -> bool: ...
    async def ready(self) -> dict[str, bool]: ...


class Admission(Protocol):
    """Decides whether a generation can finish within the request's deadline (gateway.admission)."""

    def refusal(self, remaining_s: float | None) -> RagdError | None: ...
    def admit(self, remaining_s: float | None) -> Ticket: ...


class ScopeFactory(Protocol):
    def __call__(self, *, tenant: str, collection: str, epoch: str, policy_version: str, model: str,
                 params: GenerationParams, context: str, filter: str = "") -> CacheScope: ...


@dataclass(frozen=True)
class PipelineOptions:
    """The gateway's knobs of the answer path (gateway settings and the guardrail policy's side)."""

    system_prompt: str | None = None  # None: the question language's template
    source_chars: int = 700  # longest source text put in the prompt, characters
    rewrite_follow_ups: bool = True
    guard_input_fail_open: bool = False
    guard_output_fail_open: bool = True
    holdback_chars: int = 64  # the output rails' hold-back window
    on_block_error: bool = False  # a blocked input is a 400 content_policy error instead of a refusal answer
    input_decision_cache: int = 4096  # input-rail decisions remembered
    retrieve_beside_rails: bool = True  # start the evidence check's retrieval beside the input rails


@dataclass(frozen=True)
class _Found:
    """What the cache said about a question."""

    outcome: str
    scope: CacheScope | None = None
    epoch: str = ""
    answer: Answer | None = None


async def _started(ahead: asyncio.Future[_Once | None]) -> _Once | None:
    """The retrieval started ahead, or None when none was (or starting it failed)."""
    try:
        return await ahead
    except Exception:
        return None


def _drop_unused(ahead: asyncio.Future[_Once | None]) -> None:
    """Cancels a retrieval started ahead that nobody awaits (the rails blocked or changed the question)."""
    if not ahead.done():
        ahead.cancel()
        ahead.add_done_callback(lambda task: task.cancelled() or task.exception())
        return
    retrieval = None if ahead.cancelled() or ahead.exception() else ahead.result()
    if retrieval is not None:
        retrieval.cancel_unless_used()


class _Once:
    """A coroutine started on first use and shared: the standalone question's retrieval, wanted by the
    cache's evidence check (a semantic candidate is served only if it agrees) and for generation."""

    def __init__(self, start: Callable[[], Awaitable[RetrieveResponse]]) -> None:
        self._start = start
        self._future: asyncio.Future[RetrieveResponse] | None = None
        self._used = False  # asked for again after it was started

    def cancel_unless_used(self) -> None:
        """Cancels the retrieval if nobody asked for it after it was started."""
        if self._future is not None and not self._used and not self._future.done():
            self._future.cancel()

    def __call__(self) -> asyncio.Future[RetrieveResponse]:
        self._used = self._future is not None
        if self._future is None:
            self._future = asyncio.ensure_future(self._start())
            self._future.add_done_callback(lambda done: done.cancelled() or done.exception())
        return self._future


def citation_of(number: int, chunk: ScoredChunk, snippet_chars: int = 240) -> Citation:
    snippet = chunk.text if len(chunk.text) <= snippet_chars else chunk.text[:snippet_chars].rstrip() + "…"
    return Citation(index=number, document_id=chunk.doc_id, title=chunk.title, chunk_id=chunk.chunk_id,
                    score=round(float(chunk.score), 6), snippet=snippet)


def attach_citations(text: str, chunks: Sequence[ScoredChunk]) -> tuple[str, list[Citation]]:
    """Citations for the sources the answer names; when it names none, all sources given, listed at the end."""
    numbers = cited_numbers(text, len(chunks))
    if numbers or not chunks:
        return text, [citation_of(n, chunks[n - 1]) for n in numbers]
    footer = "\n\nSources: " + "; ".join(f"[{i}] {c.title or c.doc_id}" for i, c in enumerate(chunks, 1))
    return footer, [citation_of(i, c) for i, c in enumerate(chunks, 1)]


class Pipeline:
    """Composes the pieces through their Protocols; the same code serves embedded and distributed mode."""

    def __init__(
        self,
        *,
        retriever: Retriever,
        generator: Generator,
        guard: Guard,
        epochs: EpochStore,
        cache: AnswerCacheLike | None = None,
        scope_factory: ScopeFactory | None = None,
        options: PipelineOptions = PipelineOptions(),
        admission: Admission | None = None,
        abstainer: Abstainer | None = None,
        packer: ContextPacker | None = None,
    ) -> None:
        self.retriever = retriever
        self.generator = generator
        self.guard = RememberingGuard(guard, options.input_decision_cache)
        self.epochs = epochs
        self.cache = cache
        self.scope_factory = scope_factory
        self.options = options
        self.admission = admission
        self.abstainer = abstainer
        self.packer = packer

    @property
    def has_model(self) -> bool:
        """A language model writes answers (its packer fits prompts into its window). Without one, answers are
        extracted from the sources, and a plain turn (no retrieval) has nothing to be written from."""
        return self.packer is not None

    # ------------------------------------------------------------------ before generation

    async def prepare(self, turn: ChatTurn) -> Prepared:
        ticket, answered = await self._admit(turn)
        if answered is not None:
            return answered
        # a single-turn question is its own standalone question: its embedding for the semantic
        # lookup starts now, beside the input rails, and is used only if the rails leave it unchanged
        early = self.cache.embed_early(turn.question, turn.params) if (
            self.cache is not None and not turn.history and turn.cache_read and turn.retrieval) else None
        # and so does its retrieval, when the cache's evidence check will want it (never for an exact hit)
        ahead = (asyncio.ensure_future(self._retrieve_ahead(turn))
                 if early is not None and self.options.retrieve_beside_rails else None)
        try:
            prepared = await self._prepare(turn, early, ahead)
        except BaseException:  # no generation follows: the place in the generator's queue is free again
            if ticket is not None:
                ticket.release(completed=False)
            raise
        finally:
            if early is not None and not early.done():
                early.cancel()  # unused (blocked, redacted, an exact hit): its thread finishes unseen
                early.add_done_callback(lambda task: task.cancelled() or task.exception())
            if ahead is not None:
                _drop_unused(ahead)
        if ticket is None:
            return prepared
        if prepared.answer is not None or prepared.abstention is not None:
            ticket.release(completed=False)  # answered without the generator (a hit, a block, an abstention)
            return prepared
        return replace(prepared, ticket=ticket)

    async def _retrieve_ahead(self, turn: ChatTurn) -> _Once | None:
        """The single-turn question's retrieval, started beside the input rails when the cache will ask
        for it (its exact key misses and the evidence check is on; None otherwise): the evidence check
        of a semantic candidate and the generation of a miss both need it, and it need not wait for the
        rails. A question the rails then block or change drops it unused."""
        if self.cache is None or self.scope_factory is None:
            return None
        try:
            scope = self._cache_scope(turn, await self.epochs.get(turn.tenant, turn.collection))
        except Exception:  # the lookup after the rails meets the failure and counts it
            return None
        if not await self.cache.wants_retrieval(scope, turn.question):
            return None
        retrieval = _Once(lambda: self._retrieve(turn, turn.question))
        retrieval()
        return retrieval

    async def _prepare(self, turn: ChatTurn, early: Awaitable[Vector] | None,
                       ahead: asyncio.Future[_Once | None] | None = None) -> Prepared:
        degraded: list[str] = []
        decision = await self._check_input(turn.tenant, turn.question, degraded)
        history, history_block = await self._check_history(turn, degraded)
        if history_block is not None and (decision is None or decision.action != "block"):
            decision = history_block
        if decision is not None and decision.action == "block":
            refusal = decision.refusal or "I can't help with that request."
            if self.options.on_block_error:
                raise ContentPolicyError(refusal)
            answer = Answer(refusal, [], "content_filter", Usage(), cache="bypass", degraded=degraded)
            return Prepared(turn, turn.question, degraded, cache="bypass", answer=answer)
        question = decision.text if decision is not None else turn.question
        if not turn.retrieval:
            return self._plain(turn, question, history, degraded)
        standalone = await self._standalone(question, history, degraded)
        flags = tuple(decision.flag_actions) if decision is not None and decision.action == "flag" else ()
        retrieval = await _started(ahead) if ahead is not None and standalone == turn.question else None
        retrieval = retrieval or _Once(lambda: self._retrieve(turn, standalone))
        found = await self._lookup(turn, standalone, degraded, retrieval,
                                   early if standalone == turn.question else None)
        if found.answer is not None:
            return Prepared(turn, standalone, degraded, cache=found.outcome, answer=found.answer,
                            cache_scope=found.scope)
        result = await retrieval()
        for part in result.degraded:
            mark_degraded(degraded, part)
        chunks: Sequence[ScoredChunk] = result.chunks
        abstention = self._abstention(standalone, chunks, result.degraded)
        retrieved: tuple[str, ...] = ()
        if abstention is not None:  # the answer needs no generator and cites nothing
            retrieved, chunks = tuple(c.chunk_id for c in chunks), ()
        scope = found.scope
        if result.epoch and found.epoch and result.epoch != found.epoch:
            scope = None  # the corpus changed under us: do not store this answer
        messages, chunks = await self._build_prompt(turn, standalone, chunks, history[-4:], flags,
                                                    packed=abstention is None)
        ctx = telemetry.current()
        if ctx is not None:
            ctx.fields["chunk_ids"] = [c.chunk_id for c in chunks]
        return Prepared(turn, standalone, degraded, cache=found.outcome, chunks=tuple(chunks),
                        messages=tuple(messages), cache_scope=scope, abstention=abstention, flag_actions=flags,
                        retrieved=retrieved)

    async def _admit(self, turn: ChatTurn) -> tuple[Ticket | None, Prepared | None]:
        """The request's place in the generator's queue, taken before any costly work (no rail,
        embedding or retrieval runs for a request the queue cannot take in time: it is a 429 at once),
        and freed again when the answer needs no generator. Let through when the queue is full: a
        question the rails already blocked (answered without the generator), and an exact cache hit
        whose input decision is known, returned here as :meth:`exact_hit` finds it.
        (ticket or None, the hit or None)."""
        if self.admission is None:
            return None, None
        remaining = _remaining()
        refusal = self.admission.refusal(remaining)
        if refusal is None:
            return self.admission.admit(remaining), None
        known = self.guard.known(turn.tenant, turn.question)
        if known is not None and known.action == "block":
            return None, None
        hit = await self.exact_hit(turn)
        if hit is not None:
            return None, hit
        count_refusal()
        raise refusal

    async def _retrieve(self, turn: ChatTurn, query: str) -> RetrieveResponse:
        with stage("retrieve"):
            return await self.retriever.retrieve(RetrieveRequest(
                tenant=turn.tenant, collection=turn.collection, query=query, top_k=turn.top_k,
                filter=turn.filter))

    async def _build_prompt(self, turn: ChatTurn, standalone: str, chunks: Sequence[ScoredChunk],
                            history: Sequence[ChatMessage], flags: Sequence[str],
                            *, packed: bool) -> tuple[Sequence[ChatMessage], Sequence[ScoredChunk]]:
        """The language's template over the sources that fit the model's window (the packer drops the
        lowest-ranked ones when they do not): the messages and the sources they hold."""
        language = detect_language(standalone)
        system = self.options.system_prompt or template(language).system
        if turn.instructions:
            system += "\n\nInstructions from the application:\n" + turn.instructions

        builder = build_hardened_messages if "hardened_prompt" in flags else build_messages

        def build(given: Sequence[ScoredChunk]) -> list[ChatMessage]:
            return builder(standalone, given, system_prompt=system, history=history,
                           max_source_chars=self.options.source_chars, language=language)

        if self.packer is None or not packed:
            return build(chunks), chunks
        return await self.packer.pack(build, chunks, turn.params.max_tokens)

    def _abstention(self, standalone: str, chunks: Sequence[ScoredChunk], degraded: Sequence[str]) -> str | None:
        """Between retrieval and generation: evidence too weak means a fixed answer (returned), no
        sources, no model."""
        if self.abstainer is None:
            return None
        decision = self.abstainer.decide(standalone, detect_language(standalone), chunks, degraded)
        return decision.text if decision.abstain else None

    def _plain(self, turn: ChatTurn, question: str, history: Sequence[ChatMessage], degraded: list[str]) -> Prepared:
        """Plain generation: the conversation and the application's instructions, no retrieval, no
        cache (its answers are not answers from the documents)."""
        system = turn.instructions or PLAIN_SYSTEM_PROMPT
        messages = (ChatMessage(role="system", content=system), *history[-8:],
                    ChatMessage(role="user", content=question))
        return Prepared(turn, question, degraded, cache="bypass", messages=messages)

    async def screen_user_texts(self, tenant: str, texts: Sequence[str]) -> tuple[list[str], bool]:
        """The input rails on the user turns a frontend's task request quotes (this conversation's
        questions, so their decisions are usually remembered): their texts as the rails leave them
        (PII redacted), and whether one of them is a sure block, judged as an earlier turn is
        (:func:`_blocks_history`). The task template around them is the frontend's, not the user's."""
        degraded: list[str] = []
        screened: list[str] = []
        for text in texts:
            decision = await self._check_input(tenant, text, degraded)
            if decision is not None and _blocks_history(decision):
                return [], True
            screened.append(decision.text if decision is not None else text)
        return screened, False

    async def exact_hit(self, turn: ChatTurn) -> Prepared | None:
        """The answer to a single-turn request that is an exact cache hit, when that is known cheaply:
        its input decision is remembered (the rails ran on this text before) and passes, and its key is
        in the store. None, counting nothing, otherwise; the caller then runs :meth:`prepare`.

        Everything a hit through :meth:`prepare` counts is counted here too (the input decision, the
        cache lookup, its stage time)."""
        if (turn.history or not turn.cache_read or not turn.retrieval or self.cache is None
                or self.scope_factory is None):
            return None
        decision = self.guard.known(turn.tenant, turn.question)
        if decision is None or decision.action == "block":
            return None
        try:
            epoch = await self.epochs.get(turn.tenant, turn.collection)
        except Exception:  # prepare() meets the failure and counts the degradation
            return None
        scope = self._cache_scope(turn, epoch)
        lookup = await self.cache.lookup_exact(scope, decision.text)
        if lookup is None or lookup.answer is None:
            return None
        telemetry.count_guard_decision("input", decision)
        degraded: list[str] = []
        return Prepared(turn, decision.text, degraded, cache="exact", cache_scope=scope,
                        answer=_answer_of(lookup.answer, "exact", degraded))

    async def _check_history(self, turn: ChatTurn,
                             degraded: list[str]) -> tuple[tuple[ChatMessage, ...], GuardDecision | None]:
        """Earlier user turns come from the client too: the same input rails run on each (PII redacted
        before the rewrite and the prompt see them; an attack hidden in an earlier turn blocks), but
        only a sure block counts (:func:`_blocks_history`). Assistant turns are answers that already
        passed the output rails."""
        checked: list[ChatMessage] = []
        for message in turn.history:
            if message.role != "user":
                checked.append(message)
                continue
            decision = await self._check_input(turn.tenant, message.content, degraded)
            if decision is not None and _blocks_history(decision):
                return turn.history, decision
            text = decision.text if decision is not None else message.content
            checked.append(ChatMessage(role=message.role, content=text))
        return tuple(checked), None

    def _cache_scope(self, turn: ChatTurn, epoch: str) -> CacheScope:
        """The turn's cache partition. A follow-up is keyed on its standalone form *and* the
        conversation it came from, so two conversations whose follow-ups rewrite alike never share
        an entry."""
        assert self.scope_factory is not None
        return self.scope_factory(tenant=turn.tenant, collection=turn.collection, epoch=epoch,
                                  policy_version=self.guard.policy_version, model=turn.model, params=turn.params,
                                  context=_conversation_digest(turn.history), filter=filter_digest(turn.filter))

    async def _check_input(self, tenant: str, text: str, degraded: list[str]) -> GuardDecision | None:
        """Input rails (remembered: a repeated question passes without paying for them twice). None when
        they are down and the policy lets input through unchecked."""
        try:  # the rails time themselves as stage "guard_input" where they run
            return await self.guard.check(GuardCheckRequest(kind="input", text=text, tenant=tenant))
        except DependencyError as exc:
            mark_degraded(degraded, "guardrails")
            if not self.options.guard_input_fail_open:
                raise DependencyUnavailableError(
                    "Input guardrails are unavailable; request refused.", dependency="guardrails",
                    headers={"x-ragd-degraded": "guardrails"}) from exc
            return None

    async def _standalone(self, question: str, history: Sequence[ChatMessage], degraded: list[str]) -> str:
        if not history or not self.options.rewrite_follow_ups:
            return question
        try:
            with stage("rewrite"):
                completion = await self.generator.complete(
                    rewrite_messages(history, question), GenerationParams(temperature=0.0, max_tokens=64))
        except RagdError:
            mark_degraded(degraded, "rewrite")
            return question
        rewritten = completion.text.strip()
        if plausible_rewrite(rewritten, question):
            return rewritten
        # the model gave no usable rewrite: the earlier user question plus the follow-up still
        # stands alone for retrieval (and the cache partition holds this conversation only)
        earlier = next((m.content for m in reversed(history) if m.role == "user"), "")
        return f"{earlier} {question}".strip()

    async def _lookup(self, turn: ChatTurn, standalone: str, degraded: list[str], retrieval: _Once,
                      early: Awaitable[Vector] | None) -> _Found:
        if self.cache is None or self.scope_factory is None:
            return _Found("bypass")
        try:
            epoch = await self.epochs.get(turn.tenant, turn.collection)
        except Exception:  # the epoch store is the cache's dependency: down means bypass
            mark_degraded(degraded, "cache")
            return _Found("bypass")
        scope = self._cache_scope(turn, epoch)

        async def evidence() -> list[str]:
            return [c.chunk_id for c in (await retrieval()).chunks]

        lookup = await self.cache.lookup(scope, standalone, read=turn.cache_read, early=early, evidence=evidence)
        if lookup.degraded:  # the cache counted its own failure
            mark_degraded(degraded, "cache", counted=True)
        if lookup.outcome == "semantic" and lookup.answer is not None and turn.cache_write:
            await self.cache.remember(scope, standalone, lookup.answer)  # asked again, it is an exact hit
        answer = _answer_of(lookup.answer, lookup.outcome, degraded) if lookup.answer is not None else None
        return _Found(lookup.outcome, scope, epoch, answer)

    # ------------------------------------------------------------------ generation

    async def answer(self, prepared: Prepared) -> Answer:
        """Non-streaming: generate, run output rails, attach citations, store."""
        if prepared.answer is not None:
            return prepared.answer
        async for item in self.stream(prepared):
            if isinstance(item, Answer):
                return item
        raise AssertionError("stream() ends in an Answer")

    async def stream(self, prepared: Prepared) -> AsyncIterator[Delta | Answer]:
        """Streaming: the released text pieces, then the whole :class:`Answer` (finish reason, usage,
        citations; the footer naming the sources, when the answer named none, is a text piece too)."""
        if prepared.answer is not None:
            yield Delta(text=prepared.answer.content)
            yield prepared.answer
            return
        turn = prepared.turn
        started = time.perf_counter()
        first = True
        text: list[str] = []
        final = Delta(finish_reason="stop", usage=Usage())
        if prepared.ticket is not None:
            prepared.ticket.generating()
        try:
            with stage("generate"):
                deltas = (_said(prepared.abstention) if prepared.abstention is not None
                          else self.generator.stream(list(prepared.messages), turn.params,
                                               _context(prepared) if turn.retrieval else None))
                async for delta in self._guarded(deltas, prepared):
                    if delta.finish_reason is not None:
                        final = delta
                        continue
                    if delta.text:
                        if first:
                            telemetry.TIME_TO_FIRST_TOKEN.observe(time.perf_counter() - started)
                            first = False
                        text.append(delta.text)
                        yield delta
        except DependencyError as exc:
            exc.extra.setdefault("sources", [c.model_dump() for c in
                                             (citation_of(i, ch) for i, ch in enumerate(prepared.chunks, 1))])
            exc.headers.setdefault("x-ragd-degraded", exc.dependency or "generator")
            DEGRADATIONS.labels(exc.dependency or "generator").inc()
            raise
        finally:  # done with the generator, whichever way (a cancelled one measures nothing)
            if prepared.ticket is not None:
                prepared.ticket.release(completed=final.usage is not None and final.usage.completion_tokens > 0)
        content = "".join(text)
        finish = final.finish_reason or "stop"
        citations: list[Citation] = []
        if finish != "content_filter":
            footer, citations = attach_citations(content, prepared.chunks)
            if footer != content:
                content += footer
                yield Delta(text=footer)
        answer = Answer(content, citations, finish, final.usage or Usage(), cache=prepared.cache,
                        degraded=prepared.degraded)
        await self._store(prepared, answer)
        yield answer

    async def _guarded(self, deltas: AsyncIterator[Delta], prepared: Prepared) -> AsyncIterator[Delta]:
        """Output rails over the stream through the hold-back window: nothing is released unchecked."""
        guard: Guard = self.guard
        if self.options.guard_output_fail_open:
            guard = _FailOpenOutput(self.guard, prepared.degraded)
        async for delta in guard_stream(deltas, guard, window_chars=self.options.holdback_chars,
                                        system_prompt=prepared.messages[0].content if prepared.messages else None,
                                        sources=[c.text for c in prepared.chunks], tenant=prepared.turn.tenant,
                                        strict="strict_output" in prepared.flag_actions):
            yield delta

    async def _store(self, prepared: Prepared, answer: Answer) -> None:
        turn = prepared.turn
        if (self.cache is None or prepared.cache_scope is None or not turn.cache_write
                or answer.finish_reason != "stop" or "guardrails" in prepared.degraded
                or "skip_cache" in prepared.flag_actions):
            telemetry.CACHE_STORES.labels("skipped").inc()
            return
        cached = CachedAnswer(content=answer.content, citations=[c.model_dump() for c in answer.citations],
                              finish_reason=answer.finish_reason, prompt_tokens=answer.usage.prompt_tokens,
                              completion_tokens=answer.usage.completion_tokens, model=turn.model,
                              question=prepared.standalone, created=int(time.time()),
                              cited_chunks=[c.chunk_id for c in answer.citations]  # all given: none named
                              if len(answer.citations) < len(prepared.chunks) else [],
                              # a decline cites nothing and stands on its retrieval's best chunk, so a
                              # rewording whose retrieval agrees is declined from the cache too
                              retrieved_chunks=[c.chunk_id for c in prepared.chunks] or list(prepared.retrieved))
        await self.cache.store(prepared.cache_scope, prepared.standalone, cached)


def _remaining() -> float | None:
    ctx = telemetry.current()
    return ctx.remaining() if ctx is not None else None


async def _said(text: str) -> AsyncIterator[Delta]:
    """A fixed answer as a finished stream (an abstention: no model call)."""
    yield Delta(text=text)
    yield Delta(finish_reason="stop", usage=Usage())


def _context(prepared: Prepared) -> AnswerContext:
    """The question and its numbered sources, for a generator that answers from them directly."""
    return AnswerContext(question=prepared.standalone, language=detect_language(prepared.standalone),
                         sources=list(prepared.chunks))


def _answer_of(hit: CachedAnswer, cache: str, degraded: list[str]) -> Answer:
    """A cached answer as the pipeline's Answer."""
    citations = [Citation.model_validate(c) for c in hit.citations]
    usage = Usage(prompt_tokens=hit.prompt_tokens, completion_tokens=hit.completion_tokens)
    return Answer(hit.content, citations, hit.finish_reason, usage, cache=cache, degraded=degraded)


def _conversation_digest(history: Sequence[ChatMessage]) -> str:
    users = "\x00".join(" ".join(m.content.lower().split()) for m in history if m.role == "user")
    return hashlib.sha256(users.encode()).hexdigest()[:16] if users else ""


# An earlier user turn was judged when it was sent; judging it again guards against a forged
# history. A borderline classifier score there (a chat reply the classifier half-suspects) would
# refuse every later turn of the conversation, so an earlier turn blocks only on a pattern, a failed
# rail (both score 1.0) or a classifier score of at least this.
HISTORY_BLOCK_SCORE = 0.9


def _blocks_history(decision: GuardDecision) -> bool:
    return decision.action == "block" and any(
        r.fired and r.action == "block" and r.score >= HISTORY_BLOCK_SCORE for r in decision.rails)


class _FailOpenOutput:
    """Output rails that let text through, counted and announced, when the guardrails are down."""

    def __init__(self, guard: Guard, degraded: list[str]) -> None:
        self._guard = guard
        self._degraded = degraded

    @property
    def policy_version(self) -> str:
        return self._guard.policy_version

    async def ready(self) -> dict[str, bool]:
        return await self._guard.ready()

    async def check(self, request: GuardCheckRequest) -> GuardDecision:
        try:
            return await self._guard.check(request)
        except DependencyError:
            mark_degraded(self._degraded, "guardrails")
            return GuardDecision(action="pass", text=request.text)
