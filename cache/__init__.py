"""ragd's answer cache: exact + semantic, scoped by tenant, collection, corpus epoch, policy, model and
generation parameters. ``AnswerCache.create(settings, redis_url, embedder)`` builds it."""

from cache.answer_cache import AnswerCache, QuestionVerifier
from cache.eligibility import Eligibility, eligibility
from cache.embedders import CACHE_RUNTIMES, question_embedder
from cache.entries import CachedAnswer, CacheLookup, Outcome
from cache.keys import CacheScope, exact_key, normalize_question, partition_key
from cache.settings import CacheSettings

__all__ = [
    "CACHE_RUNTIMES",
    "AnswerCache",
    "CacheLookup",
    "CacheScope",
    "CacheSettings",
    "CachedAnswer",
    "Eligibility",
    "Outcome",
    "QuestionVerifier",
    "eligibility",
    "exact_key",
    "normalize_question",
    "partition_key",
    "question_embedder",
]
