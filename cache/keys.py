"""Cache scopes and keys. A key is a hash: it never reveals the tenant, the collection or the question.

The *scope* is everything that changes an answer except the question: tenant, collection, the
collection's corpus epoch, the guardrail policy version, the model, every generation parameter and
the metadata filter the sources were searched with. Its hash is the *partition*, the only
neighbourhood the semantic cache searches, so an entry of another tenant, another epoch, other
parameters or another filter is never even a candidate.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field

from services.contracts import GenerationParams

__all__ = ["CacheScope", "exact_key", "group_key", "key_params", "normalize_question", "partition_key"]

_KEY_VERSION = "v1"
_HANGUL_GAP = re.compile(r"(?<=[\uac00-\ud7a3]) (?=[\uac00-\ud7a3])")
_SPACES = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\s\"'“”‘’«»(\[]+|[\s\"'“”‘’«»)\].?!？！。…:;,]+$")


@dataclass(frozen=True, slots=True)
class CacheScope:
    """Everything besides the question that decides an answer. ``epoch`` is the opaque corpus token."""

    tenant: str
    collection: str
    epoch: str
    policy_version: str
    model: str
    params: GenerationParams = field(default_factory=lambda: GenerationParams.model_validate({}))
    filter: str = ""  # digest of the metadata filter the answer's sources were searched with; "" for none

    def canonical(self) -> str:
        """A stable serialisation of the scope (the hash input; never stored or returned)."""
        return _canonical(self)


@functools.lru_cache(maxsize=1024)
def _canonical(scope: CacheScope) -> str:
    """Memoised: a hot scope (one tenant, collection, epoch, parameters) is serialised once, not on
    every lookup (it was a tenth of an exact hit's time)."""
    parts = [
        _KEY_VERSION,
        scope.tenant,
        scope.collection,
        scope.epoch,
        scope.policy_version,
        scope.model,
        key_params(scope.params).model_dump(mode="json"),
    ]
    if scope.filter:  # appended only when set: unfiltered scopes keep the keys they always had
        parts.append({"filter": scope.filter})
    return json.dumps(
        parts,
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )


def key_params(params: GenerationParams) -> GenerationParams:
    """The generation parameters that change an answer. Greedy decoding (temperature 0) reads neither
    ``top_p`` nor the seed, so at temperature 0 they leave the key: a client sending ``top_p=0.9`` or a
    seed with temperature 0 shares the entries of one that sends neither. A sampled answer keeps all of
    them (another temperature, nucleus or seed is another distribution of answers)."""
    if params.temperature > 0:
        return params
    return params.model_copy(update={"top_p": 1.0, "seed": None})


def normalize_question(question: str) -> str:
    """NFKC, case-folded, whitespace collapsed and dropped between two Hangul syllables (Korean spacing
    varies from writer to writer: "노아의방주" is "노아의 방주"), surrounding quotes and trailing
    punctuation dropped."""
    text = unicodedata.normalize("NFKC", question).casefold()
    text = _HANGUL_GAP.sub("", _SPACES.sub(" ", text).strip())
    return _EDGE_PUNCT.sub("", text)


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=20, person=b"ragd-cache")
    for part in parts:
        h.update(part.encode())
        h.update(b"\x00")
    return h.hexdigest()


def partition_key(scope: CacheScope) -> str:
    """The opaque id of a scope: the semantic neighbourhood and the namespace of its entries."""
    return _digest("partition", scope.canonical())


def group_key(scope: CacheScope) -> str:
    """The opaque id of the scope's (tenant, collection): all its partitions, of every epoch."""
    return _digest("group", json.dumps([_KEY_VERSION, scope.tenant, scope.collection], ensure_ascii=False))


@functools.lru_cache(maxsize=4096)
def exact_key(scope: CacheScope, question: str) -> str:
    """The opaque id of one (scope, normalized standalone question)."""
    return _digest("exact", scope.canonical(), normalize_question(question))
