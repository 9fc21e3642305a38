"""The rails: each takes text (and context) and returns a RailResult. Pure, synchronous, CPU."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from guardrails.classifier import InjectionClassifier
from guardrails.heuristics import (
    EXTRACTION_PATTERNS,
    INJECTION_PATTERNS,
    discusses_attacks,
    first_hit,
    harmful_hit,
)
from guardrails.output_checks import grounding_score, leak_score
from guardrails.pii import PiiDetector
from guardrails.policy import PiiRail, RailPolicy, SelfCheckRail, TopicRail
from guardrails.self_check import SelfCheck
from guardrails.semantic import Matrix
from guardrails.topics import TopicMatcher
from services.contracts import RailResult

__all__ = ["attack_rails", "grounding_rail", "leak_rail", "pii_rail", "scores_classifier", "self_check_rail",
           "topic_rail"]

# Words that make a classifier hit an extraction attempt rather than an injection.
_EXTRACTION_CUES = ("prompt", "instruction", "password", "secret", "system", "initial", "hidden", "reveal",
                    "프롬프트", "지시", "지침", "비밀", "시스템", "설정", "암호", "원문")


_MIN_CLASSIFIER_CHARS = 8
# A question about attacks ("why is 'ignore previous instructions' dangerous?") quotes attack words
# that the n-gram classifier scores high: it must be surer to block one.
_DISCUSSION_MIN_P = 0.9


def scores_classifier(normalized: str) -> bool:
    """Whether :func:`attack_rails` asks the classifier about this text."""
    return len(normalized.strip()) >= _MIN_CLASSIFIER_CHARS


def _result(rail: str, policy: RailPolicy, fired: bool, score: float, detail: str = "") -> RailResult:
    return RailResult(rail=rail, fired=fired, score=round(score, 4), action=policy.action if fired else "pass",
                      detail=detail)


def _needed(policy: RailPolicy, discussion: bool) -> float:
    return max(policy.threshold, _DISCUSSION_MIN_P) if discussion else policy.threshold


def attack_rails(normalized: str, classifier: InjectionClassifier, injection: RailPolicy,
                 extraction: RailPolicy, vector: Callable[[], Matrix] | None = None) -> list[RailResult]:
    """Injection/jailbreak (harmful requests included) and system-prompt extraction: patterns first,
    then the classifier. ``vector``: waits for the text's semantic vector when the caller started
    computing it beside this call (else the classifier computes it when its model needs one)."""
    extraction_hit = injection_hit = None
    discussion = discusses_attacks(normalized)
    if not discussion:  # a question about attacks is left to the classifier
        extraction_hit = first_hit(EXTRACTION_PATTERNS, normalized)
        injection_hit = first_hit(INJECTION_PATTERNS, normalized) or harmful_hit(normalized)
    # a few characters ("hi", "ok") carry too little for the n-gram classifier: patterns only
    p = classifier.score(normalized, None if vector is None else vector()) if scores_classifier(normalized) else 0.0
    lowered = normalized.lower()
    looks_extraction = extraction_hit is not None or any(cue in lowered for cue in _EXTRACTION_CUES)
    results = []
    if injection.enabled:
        fired = injection_hit is not None or (p >= _needed(injection, discussion) and not looks_extraction)
        score = 1.0 if injection_hit else p
        results.append(_result("injection", injection, fired, score, f"pattern: {injection_hit}"
                               if injection_hit else f"classifier p={p:.3f}"))
    if extraction.enabled:
        fired = extraction_hit is not None or (p >= _needed(extraction, discussion) and looks_extraction)
        score = 1.0 if extraction_hit else (p if looks_extraction else 0.0)
        results.append(_result("extraction", extraction, fired, score, f"pattern: {extraction_hit}"
                               if extraction_hit else f"classifier p={p:.3f}"))
    return results


def pii_rail(text: str, detector: PiiDetector, policy: PiiRail) -> tuple[RailResult, str]:
    """PII and secrets; returns the result and the text with matches replaced by placeholders."""
    redacted, matches = detector.redact(text)
    if not matches:
        return _result("pii", policy, False, 0.0), text
    counts = Counter(m.entity for m in matches)
    detail = ",".join(f"{k}:{v}" for k, v in sorted(counts.items()))
    result = _result("pii", policy, True, max(m.score for m in matches), detail)
    if policy.block_entities and set(counts) & set(policy.block_entities):
        result = result.model_copy(update={"action": "block"})
    return result, redacted


def topic_rail(text: str, matcher: TopicMatcher, policy: TopicRail) -> RailResult:
    match = matcher.match(text, policy.threshold)
    return _result("topics", policy, match.topic is not None, match.score,
                   f"topic: {match.topic}" if match.topic else (f"nearest: {match.nearest}" if match.nearest else ""))


def self_check_rail(text: str, checker: SelfCheck, policy: SelfCheckRail) -> RailResult:
    """The LLM's verdict on the (redacted) text; raises when it cannot be had (the caller applies fail_open)."""
    blocked = checker.should_block(text)
    return _result("self_check", policy, blocked, 1.0 if blocked else 0.0, "llm: yes" if blocked else "llm: no")


def leak_rail(text: str, system_prompt: str | None, policy: RailPolicy) -> RailResult:
    score = leak_score(text, system_prompt) if system_prompt else 0.0
    return _result("leak", policy, score >= policy.threshold and score > 0, score)


def grounding_rail(text: str, sources: list[str], policy: RailPolicy) -> RailResult:
    if not sources:
        return _result("grounding", policy, False, 1.0, "no sources")
    score = grounding_score(text, sources)
    return _result("grounding", policy, score < policy.threshold, score)
