"""The rails: each takes text (and context) and returns a RailResult. Pure, synchronous, CPU."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from guardrails.classifier import InjectionClassifier
from guardrails.heuristics import RuleHit, RuleSet
from guardrails.output_checks import grounding_score, leak_score
from guardrails.pii import PiiDetector
from guardrails.policy import PiiRail, RailPolicy, SelfCheckRail, TopicRail
from guardrails.self_check import SelfCheck
from guardrails.semantic import Matrix
from guardrails.topics import TopicMatcher
from services.contracts import RailResult

__all__ = ["AttackAssessment", "Verdict", "assess_attack", "attack_patterns", "attack_rails", "attack_results",
           "graded", "grounding_rail", "instruction_rail", "leak_rail", "pii_rail", "scores_classifier",
           "self_check_rail", "topic_rail"]

Verdict = Literal["pass", "redact", "flag", "block"]

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


def _result(rail: str, policy: RailPolicy, fired: bool, score: float, detail: str = "",
            rule: str | None = None) -> RailResult:
    return RailResult(rail=rail, fired=fired, score=round(score, 4), action=policy.action if fired else "pass",
                      detail=detail, rule=rule)


@dataclass(frozen=True)
class AttackAssessment:
    """What the injection and extraction rails read of one normalised text, before any threshold: the
    evaluation applies many thresholds to one assessment, the guard applies the policy's."""

    p: float
    injection_hit: RuleHit | None = None
    extraction_hit: RuleHit | None = None
    discussion: bool = False
    looks_extraction: bool = False


def attack_patterns(normalized: str, rules: RuleSet) -> AttackAssessment:
    """The pattern side of :func:`assess_attack` (``p`` left at 0): rule hits, whether the text
    talks about attacks, whether it has extraction cues."""
    extraction_hit = injection_hit = None
    discussion = rules.discusses_attacks(normalized)
    if not discussion:  # a question about attacks is left to the classifier
        extraction_hit = rules.first_hit("extraction", normalized)
        injection_hit = rules.first_hit("injection", normalized) or rules.harmful_hit(normalized)
    lowered = normalized.lower()
    looks_extraction = extraction_hit is not None or any(cue in lowered for cue in _EXTRACTION_CUES)
    return AttackAssessment(0.0, injection_hit, extraction_hit, discussion, looks_extraction)


def assess_attack(normalized: str, rules: RuleSet, classifier: InjectionClassifier,
                  vector: Callable[[], Matrix] | None = None) -> AttackAssessment:
    """Rules first, then the classifier. ``vector``: waits for the text's semantic vector when the
    caller started computing it beside this call (else the classifier computes it when its model
    needs one)."""
    patterns = attack_patterns(normalized, rules)
    # a few characters ("hi", "ok") carry too little for the n-gram classifier: patterns only
    p = classifier.score(normalized, None if vector is None else vector()) if scores_classifier(normalized) else 0.0
    return replace(patterns, p=p)


def graded(p: float, policy: RailPolicy, language: str, discussion: bool) -> Verdict:
    """``policy.action`` at or above the rail's threshold for ``language``, ``flag`` in the band under
    it, else ``pass``. A question about attacks quotes attack words: it must reach
    :data:`_DISCUSSION_MIN_P` to fire, and is flagged from the band's lower edge."""
    high, low = policy.cuts(language)
    if p >= (max(high, _DISCUSSION_MIN_P) if discussion else high):
        return policy.action
    if low is not None and p >= low:
        return "flag"
    return "pass"


def _attack_result(rail: str, policy: RailPolicy, hit: RuleHit | None, p: float, mine: bool, language: str,
                   discussion: bool) -> RailResult:
    if hit is not None:
        return _result(rail, policy, True, 1.0, f"pattern {hit}", rule=hit.rule)
    action: Verdict = graded(p, policy, language, discussion) if mine else "pass"
    detail = f"classifier p={p:.3f}"
    if action == "flag":
        return RailResult(rail=rail, fired=False, score=round(p, 4), action="flag", detail=detail)
    return _result(rail, policy, action != "pass", p if mine else 0.0, detail)


def attack_rails(normalized: str, rules: RuleSet, classifier: InjectionClassifier, injection: RailPolicy,
                 extraction: RailPolicy, vector: Callable[[], Matrix] | None = None,
                 language: str = "en") -> list[RailResult]:
    """Injection/jailbreak (harmful requests included) and system-prompt extraction: a rule hit
    fires its rail (the result names the rule); else the classifier's p is graded against the rail's
    cut points for ``language`` (:func:`graded`); a text with extraction cues goes to the extraction rail."""
    return attack_results(assess_attack(normalized, rules, classifier, vector), injection, extraction, language)


def attack_results(a: AttackAssessment, injection: RailPolicy, extraction: RailPolicy,
                   language: str) -> list[RailResult]:
    """The two rails' results for one assessment."""
    results = []
    if injection.enabled:
        results.append(_attack_result("injection", injection, a.injection_hit, a.p, not a.looks_extraction,
                                      language, a.discussion))
    if extraction.enabled:
        results.append(_attack_result("extraction", extraction, a.extraction_hit, a.p, a.looks_extraction,
                                      language, a.discussion))
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


def leak_rail(text: str, system_prompt: str | None, policy: RailPolicy, threshold: float | None = None) -> RailResult:
    """``threshold``: instead of the policy's (the tighter one of a flagged request)."""
    score = leak_score(text, system_prompt) if system_prompt else 0.0
    cut = policy.threshold if threshold is None else threshold
    return _result("leak", policy, score >= cut and score > 0, score)


def instruction_rail(text: str, rules: RuleSet, policy: RailPolicy) -> RailResult:
    """An answer that carries instructions (role tokens, override or extraction phrasing, the assistant
    stating its own instructions; rules of category ``instruction``): run on the answers of flagged requests."""
    hit = rules.first_hit("instruction", text)
    return _result("instructions", policy, hit is not None, 1.0 if hit else 0.0, str(hit) if hit else "")


def grounding_rail(text: str, sources: list[str], policy: RailPolicy) -> RailResult:
    if not sources:
        return _result("grounding", policy, False, 1.0, "no sources")
    score = grounding_score(text, sources)
    return _result("grounding", policy, score < policy.threshold, score)
