"""ragd's answer cache: exact + semantic, scoped by tenant, collection, corpus epoch, policy, model and
generation parameters. ``AnswerCache.create(settings, redis_url, embedder)`` builds it."""

from cache.answer_cache import AnswerCache, QuestionVerifier
from cache.eligibility import Eligibility, eligibility
from cache.embedders import E5OnnxQuestionEmbedder, E5QuestionEmbedder, MiniLMQuestionEmbedder, QuestionEmbedder
from cache.entries import CachedAnswer, CacheLookup, Outcome
from cache.keys import CacheScope, exact_key, normalize_question, partition_key
from cache.settings import CacheSettings

__all__ = [
    "AnswerCache",
    "CacheLookup",
    "CacheScope",
    "CacheSettings",
    "CachedAnswer",
    "E5OnnxQuestionEmbedder",
    "E5QuestionEmbedder",
    "Eligibility",
    "MiniLMQuestionEmbedder",
    "Outcome",
    "QuestionEmbedder",
    "QuestionVerifier",
    "eligibility",
    "exact_key",
    "normalize_question",
    "partition_key",
]
