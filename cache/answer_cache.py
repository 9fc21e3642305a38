"""The answer cache: exact lookups by key, then guarded semantic lookups within the scope's partition.

A lookup never raises and never waits on Redis longer than ``redis_timeout_s`` per round trip: a
dead or slow store is a ``bypass`` (counted in ``ragd_degradations{dependency="cache"}``), and a
short circuit breaker skips Redis for ``breaker_cooldown_s`` after a failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from cache.backends import CacheBackend, MemoryBackend, Placement
from cache.embedders import question_embedder
from cache.entries import CachedAnswer, CacheLookup, Outcome
from cache.evidence import EvidenceCheck, EvidenceSource, RejectReason, count_rejection
from cache.guards import reject_reason
from cache.index import Neighbour, PartitionIndex, pack_record
from cache.keys import CacheScope, exact_key, group_key, partition_key
from cache.redis_backend import RedisBackend
from cache.settings import CacheSettings
from cache.variants import align
from embeddings.protocol import Embedder, prepare_queries
from services.contracts import GenerationParams
from services.httpclient import CircuitBreaker
from services.telemetry import CACHE_EVICTIONS, CACHE_LOOKUPS, CACHE_STORES, DEGRADATIONS, child, observe_stage, stage

__all__ = ["AnswerCache", "QuestionVerifier"]

log = logging.getLogger("ragd.cache")
T = TypeVar("T")
Vector = npt.NDArray[np.float32]
_VECTOR_MEMO = 256
_DECODED_MEMO = 256


def _placement(scope: CacheScope) -> Placement:
    """Where the scope's entries are written: its partition, its (tenant, collection) group and its epoch."""
    return Placement(partition_key(scope), group_key(scope), scope.epoch)


class QuestionVerifier(Protocol):
    """Scores whether two standalone questions ask the same thing (e.g. a cross-encoder); higher is surer."""

    def score(self, question: str, candidate: str) -> float: ...


class AnswerCache:
    """Exact + semantic answer cache over a :class:`CacheBackend`. Build it with :meth:`create`."""

    def __init__(
        self,
        settings: CacheSettings,
        backend: CacheBackend,
        embedder: Embedder | None = None,
        verifier: QuestionVerifier | None = None,
    ) -> None:
        self.settings = settings
        self._backend = backend
        self._embedder = embedder if settings.semantic else None
        self._verifier = verifier if settings.verifier else None
        self._evidence = (
            EvidenceCheck(settings.evidence_min_cited, settings.evidence_min_overlap, settings.evidence_cited_rank)
            if settings.evidence
            else None
        )
        self._breaker = CircuitBreaker(threshold=1, reset_s=settings.breaker_cooldown_s)
        self._warm = False
        self._vectors: OrderedDict[str, Vector] = OrderedDict()
        self._decoded: OrderedDict[bytes, CachedAnswer] = OrderedDict()

    @classmethod
    def create(
        cls,
        settings: CacheSettings,
        redis_url: str | None,
        embedder: Embedder | None = None,
        verifier: QuestionVerifier | None = None,
    ) -> AnswerCache:
        """Redis backend when ``redis_url`` is given, in-process otherwise. Without an embedder and with
        ``settings.semantic`` on, the packaged embedder named by ``settings.embedder`` is used (lazily loaded)."""
        backend: CacheBackend
        if redis_url:
            timeout = settings.redis_timeout_s
            redis = Redis.from_url(
                redis_url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
            )
            backend = RedisBackend(
                redis,
                namespace=settings.namespace,
                ttl_s=settings.ttl_s,
                max_per_partition=settings.max_entries_per_partition,
                max_indexed=settings.max_entries_total,
                load_wait_s=timeout / 2,
            )
        else:
            backend = MemoryBackend(
                ttl_s=settings.ttl_s,
                max_per_partition=settings.max_entries_per_partition,
                max_total=settings.max_entries_total,
            )
        if embedder is None and settings.semantic:
            embedder = question_embedder(settings)
        return cls(settings, backend, embedder, verifier)

    async def warm_up(self) -> None:
        """Load the embedder now (call it in the app's lifespan) so the first lookup does not pay for it."""
        if self._embedder is not None:
            await asyncio.to_thread(self._embedder.embed_queries, ["warm up"])
        self._warm = True

    async def ready(self) -> dict[str, bool]:
        """``embedder``: loaded by :meth:`warm_up` (or not needed); ``store``: not bypassed after a failure
        (the breaker is closed). A bypassed cache degrades answers, it does not stop them."""
        return {"embedder": self._warm or self._embedder is None, "store": not self._breaker.is_open}

    async def close(self) -> None:
        await self._backend.close()

    def embed_early(self, question: str, params: GenerationParams) -> asyncio.Future[Vector] | None:
        """Start embedding ``question`` now, for a semantic lookup that will follow (the caller overlaps
        it with the input rails and passes the future to :meth:`lookup` if the rails left the text as
        it was). None when no semantic lookup would follow. The vector is memoised only once it is used.
        The embedding is in its thread before this returns, so the rails started next do not hold it
        back (see :meth:`_embed`)."""
        if self._embedder is None or not self._cacheable(params):
            return None
        return self._embed(question)

    async def lookup(self, scope: CacheScope, question: str, *, read: bool = True,
                     early: Awaitable[Vector] | None = None, evidence: EvidenceSource | None = None) -> CacheLookup:
        """The cached answer to ``question`` in ``scope``: exact, else the nearest guarded paraphrase.
        ``early``: the embedding of exactly ``question`` started by :meth:`embed_early`.
        ``evidence``: the question's own retrieval (top-k chunk ids). With ``settings.evidence`` on, it
        starts beside the embedding once the exact lookup missed (a miss needs it anyway, so the caller
        memoises it and reuses it), and a semantic candidate is served only if it agrees with the
        evidence the cached answer was built from (:mod:`cache.evidence`). An exact hit never calls it."""
        if not (read and self._cacheable(scope.params)):
            return self._count(CacheLookup("bypass"))
        with stage("cache_lookup"):
            if self._breaker.is_open:
                return self._degraded()
            try:
                result = await self._lookup(scope, question, early, evidence)
            except Exception as exc:  # a cache failure must never fail the request
                return self._degraded(exc)
        return self._count(result)

    async def lookup_exact(self, scope: CacheScope, question: str) -> CacheLookup | None:
        """The exact hit for ``question`` in ``scope``, counted and timed like :meth:`lookup`'s; None,
        counting nothing, when there is none or the store cannot say (the caller then makes the
        full :meth:`lookup`). For a fast path that answers repeated questions first."""
        if not self._cacheable(scope.params) or self._breaker.is_open:
            return None
        start = time.perf_counter()
        try:
            raw = await self._io(self._backend.get(exact_key(scope, question)))
        except Exception as exc:  # trip the breaker: the full lookup that follows counts the bypass at once
            self._trip(exc)
            return None
        if raw is None:
            return None
        observe_stage("cache_lookup", time.perf_counter() - start)
        return self._count(CacheLookup("exact", self._decode(raw), 1.0))

    async def wants_retrieval(self, scope: CacheScope, question: str) -> bool:
        """Whether a lookup of ``question`` in ``scope`` will ask for its retrieval: the evidence check is
        on and the question has no exact entry (False too when the cache is off for these parameters or
        the store cannot say). Counts nothing: for a caller deciding whether to start the retrieval
        before the input rails have let the question through."""
        if self._evidence is None or self._embedder is None or not self._cacheable(scope.params) \
                or self._breaker.is_open:
            return False
        try:
            return await self._io(self._backend.get(exact_key(scope, question))) is None
        except Exception:
            return False

    async def store(self, scope: CacheScope, question: str, answer: CachedAnswer, *, write: bool = True) -> bool:
        """Store a complete answer (``finish_reason == "stop"``); False when skipped or the store failed.

        ``write=False`` (``Cache-Control: no-store``) writes nothing. The caller decides the rest of
        eligibility: store only answers that no rail blocked.
        """
        if not (write and self._storable(scope, answer)):
            CACHE_STORES.labels("skipped").inc()
            return False
        if self._breaker.is_open:
            CACHE_STORES.labels("failed").inc()
            return False
        with stage("cache_store"):
            return await self._written(self._store(scope, question, answer), "stored")

    async def remember(self, scope: CacheScope, question: str, answer: CachedAnswer) -> bool:
        """Keep a semantic hit under ``question``'s own exact key, so the same question asked again is an exact
        hit (same scope, so the same epoch: a corpus change drops it with the rest). No index record is written:
        the alias is never a neighbour, so a later paraphrase is still compared with the question the answer was
        made for, never with a paraphrase of it. False when the store failed (nothing else changes)."""
        if self._breaker.is_open:
            return False
        put = self._backend.put(_placement(scope), exact_key(scope, question), answer.model_dump_json().encode(), None)
        return await self._written(self._io(put), "remembered")

    async def _written(self, write: Awaitable[int], result: str) -> bool:
        """Await a write of entries, counted as ``result`` with what it evicted; a failure trips the breaker and
        is counted as failed (False)."""
        try:
            evicted = await write
        except Exception as exc:
            self._trip(exc)
            CACHE_STORES.labels("failed").inc()
            return False
        CACHE_STORES.labels(result).inc()
        if evicted:
            CACHE_EVICTIONS.inc(evicted)
        return True

    async def reclaim(self, tenant: str, collection: str, epoch: str) -> int:
        """Delete the entries of every older corpus epoch of a collection at once (call it after an
        ingest, update or delete with the new epoch); they could never be served anyway, this frees
        them before their TTL. Returns the entries deleted; 0 when the store is unavailable."""
        group = group_key(CacheScope(tenant, collection, epoch, "", ""))
        try:
            async with asyncio.timeout(max(1.0, 10 * self.settings.redis_timeout_s)):
                dropped = await self._backend.reclaim(group, epoch)
        except Exception as exc:
            self._trip(exc)
            return 0
        if dropped:
            CACHE_EVICTIONS.inc(dropped)
        return dropped

    # ------------------------------------------------------------------ internals

    async def _lookup(self, scope: CacheScope, question: str, early: Awaitable[Vector] | None,
                      evidence: EvidenceSource | None) -> CacheLookup:
        raw = await self._io(self._backend.get(exact_key(scope, question)))
        if raw is not None:
            return CacheLookup("exact", self._decode(raw), 1.0)
        if self._embedder is None:
            return CacheLookup("miss")
        retrieved = (
            asyncio.ensure_future(_chunk_ids(evidence)) if evidence is not None and self._evidence else None
        )
        # the embedding (a thread), the index catch-up (a Redis round trip) and the retrieval overlap
        vector, index = await asyncio.gather(
            self._vector(question, early), self._io(self._backend.index(partition_key(scope), self._embedder.dim))
        )
        threshold = self.settings.threshold_for(question)
        for rank, neighbour in enumerate(index.nearest(vector, self.settings.semantic_candidates)):
            similarity = (
                await self._similarity(question, neighbour, index, threshold) if rank == 0 else neighbour.similarity
            )
            if similarity < threshold:
                continue
            reason = await self._refusal(question, neighbour.question, similarity, threshold)
            raw = None if reason is not None else await self._io(self._backend.get(neighbour.key))
            if raw is None:
                continue
            answer = self._decode(raw)
            if retrieved is not None and self._evidence is not None:
                ids = await retrieved
                reason = "retrieval" if ids is None else self._evidence.reason(answer, ids)
            if reason is None:
                return CacheLookup("semantic", answer, similarity)
            count_rejection(reason, question, neighbour.question, similarity)
        return CacheLookup("miss")

    async def _similarity(self, question: str, neighbour: Neighbour, index: PartitionIndex, threshold: float) -> float:
        """The nearest neighbour's cosine, or, when it is under the threshold but at least ``respell_floor`` and the
        question differs from it by spacing or typos only in places, the cosine of the question spelt as
        the neighbour is (:func:`cache.variants.align`): an embedding sees "전자화페" and "전자화폐" as
        further apart than the guards, which compare the respelt question, do. Only the nearest neighbour
        is compared again, so a lookup embeds at most one more text."""
        similarity = neighbour.similarity
        if not self.settings.respell_floor <= similarity < threshold:
            return similarity
        respelt = align(question, neighbour.question)
        if respelt == question:
            return similarity
        again = index.similarity(neighbour.key, await self._vector(respelt))
        return similarity if again is None else max(similarity, again)

    def _decode(self, raw: bytes) -> CachedAnswer:
        """The entry stored as ``raw``, parsed once while it stays hot (a hot answer is hit again and
        again; its bytes are the key, so a changed entry is parsed afresh)."""
        answer = self._decoded.get(raw)
        if answer is None:
            answer = CachedAnswer.model_validate_json(raw)
            self._decoded[raw] = answer
            if len(self._decoded) > _DECODED_MEMO:
                self._decoded.popitem(last=False)
        else:
            self._decoded.move_to_end(raw)
        return answer

    async def _refusal(self, question: str, candidate: str, similarity: float, threshold: float) -> RejectReason | None:
        """Why the guards or the verifier refuse ``candidate`` (counted), or None when they accept it."""
        reason: RejectReason | None = None
        if self.settings.guards and reject_reason(question, candidate, self.settings.guards_off) is not None:
            reason = "guard"
        elif self._verifier is not None and similarity < threshold + self.settings.verifier_band:
            score = await asyncio.to_thread(self._verifier.score, question, candidate)
            reason = None if score >= self.settings.verifier_min_score else "verifier"
        if reason is not None:
            count_rejection(reason, question, candidate, similarity)
        return reason

    async def _store(self, scope: CacheScope, question: str, answer: CachedAnswer) -> int:
        stored = answer.model_copy(update={"question": question})
        record = None
        if self._embedder is not None:
            record = pack_record(await self._vector(question), question)
        value = stored.model_dump_json().encode()
        return await self._io(self._backend.put(_placement(scope), exact_key(scope, question), value, record))

    async def _vector(self, question: str, early: Awaitable[Vector] | None = None) -> Vector:
        """The question's embedding, memoised briefly so a store right after its lookup does not re-embed."""
        vector = self._vectors.get(question)
        if vector is None:
            vector = await (early if early is not None else self._embed(question))
            self._vectors[question] = vector
            if len(self._vectors) > _VECTOR_MEMO:
                self._vectors.popitem(last=False)
        return vector

    def _embed(self, question: str) -> asyncio.Future[Vector]:
        """The embedding of ``question``, running in a worker thread from now on. The tokenising happens
        here, in the event loop's thread, so the worker only runs the model: a worker that needs the
        GIL back while the input rails run Python code in another thread waits up to 5 ms each time."""
        assert self._embedder is not None
        run = prepare_queries(self._embedder, [question])
        return asyncio.get_running_loop().run_in_executor(None, lambda: run()[0])

    def _cacheable(self, params: GenerationParams) -> bool:
        """The cache is on and answers sampled with ``params`` are *the* answer (not too hot)."""
        return self.settings.enabled and params.temperature <= self.settings.max_temperature

    def _storable(self, scope: CacheScope, answer: CachedAnswer) -> bool:
        return (
            self._cacheable(scope.params)
            and answer.finish_reason == "stop"
            and 0 < len(answer.content) <= self.settings.max_answer_chars
        )

    async def _io(self, call: Awaitable[T]) -> T:
        if not self._backend.remote:  # nothing to wait for: no timer to arm
            return await call
        async with asyncio.timeout(self.settings.redis_timeout_s):
            return await call

    def _trip(self, exc: BaseException) -> None:
        self._breaker.record_failure()
        log.warning("cache store unavailable; bypassing", extra={"ragd": {"error": type(exc).__name__}})

    def _degraded(self, exc: BaseException | None = None) -> CacheLookup:
        if exc is not None:
            self._trip(exc)
        DEGRADATIONS.labels("cache").inc()
        return self._count(CacheLookup("bypass", degraded=True))

    @staticmethod
    def _count(result: CacheLookup) -> CacheLookup:
        outcome: Outcome = result.outcome
        child(CACHE_LOOKUPS, outcome).inc()
        return result


async def _chunk_ids(evidence: EvidenceSource) -> Sequence[str] | None:
    """The question's top-k chunk ids, or None when its retrieval failed (the caller meets the failure
    again when it awaits the same retrieval for generation)."""
    try:
        return await evidence()
    except Exception:
        return None
