"""The in-process guard: :class:`LocalGuard` implements ``services.protocols.Guard``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Literal

from guardrails.classifier import InjectionClassifier, semantic_inputs
from guardrails.heuristics import RuleSet, load_rules
from guardrails.normalize import language_of, normalize
from guardrails.pii import PiiDetector
from guardrails.policy import GatewaySide, Policy, RailPolicy, load_policy
from guardrails.rails import (
    attack_rails,
    grounding_rail,
    instruction_rail,
    leak_rail,
    pii_rail,
    scores_classifier,
    self_check_rail,
    topic_rail,
)
from guardrails.self_check import SelfCheck
from guardrails.semantic import Matrix
from guardrails.settings import GuardrailsSettings
from guardrails.topics import Embed, TopicMatcher, load_intents, minilm_embedder
from services.contracts import GuardCheckRequest, GuardDecision, RailResult
from services.errors import InvalidRequestError, PayloadTooLargeError
from services.telemetry import count_guard_decision, stage

__all__ = ["LocalGuard"]

_log = logging.getLogger("ragd.guardrails")


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + (time.perf_counter() - start) * 1000


def _blocking(rails: list[RailResult]) -> list[RailResult]:
    """The rails that fired with action ``block``."""
    return [r for r in rails if r.fired and r.action == "block"]


def _clear_flags(rails: list[RailResult]) -> list[RailResult]:
    """The rails with their flags turned to passes (the self-check LLM judged the flagged text fine)."""
    return [r.model_copy(update={"action": "pass", "detail": r.detail + "; flag cleared by self_check"})
            if r.action == "flag" else r for r in rails]


def _failed(rail: str, policy: RailPolicy, exc: BaseException) -> RailResult:
    """A rail that raised: passes when the policy says fail-open, blocks otherwise."""
    _log.error("rail failed", extra={"ragd": {"rail": rail, "error": type(exc).__name__}})
    if policy.fail_open:
        return RailResult(rail=rail, fired=False, action="pass", detail="error: failed open")
    return RailResult(rail=rail, fired=True, score=1.0, action="block", detail="error: failed closed")


class LocalGuard:
    """Input and output rails in this process. Models load in :meth:`warm_up` (or on first use)."""

    def __init__(self, policy: Policy, settings: GuardrailsSettings, *, embed: Embed | None = None,
                 rules: RuleSet | None = None) -> None:
        """``rules``: the pattern rules (default: read from ``settings.rules_path``), less those the
        policy disables; an unknown id in ``input.disabled_rules`` raises ``RulesError``."""
        self.policy = policy
        self.settings = settings
        self.rules = (rules or load_rules(settings.rules_path)).without(policy.input.disabled_rules)
        self._embed = embed
        self._classifier: InjectionClassifier | None = None
        self._topics: TopicMatcher | None = None
        self._self_check: SelfCheck | None = None
        self._input_pii = PiiDetector(policy.input.pii.entities)
        self._output_pii = PiiDetector(policy.output.pii.entities)
        self._executor = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="guard")
        # the classifier's semantic vector is computed here, beside the patterns and n-gram features
        self._semantic_pool = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="guard-semantic")
        self._ready = False

    @classmethod
    def from_settings(cls, settings: GuardrailsSettings, *, embed: Embed | None = None) -> LocalGuard:
        """Reads and validates the policy and the rules; models load later in :meth:`warm_up`."""
        return cls(load_policy(settings.policy_path), settings, embed=embed)

    @property
    def policy_version(self) -> str:
        return self.policy.version

    @property
    def gateway_policy(self) -> GatewaySide:
        """The part of the policy the gateway applies itself (as :class:`guardrails.client.HttpGuard` has it)."""
        return self.policy.gateway_side

    async def ready(self) -> dict[str, bool]:
        """``models``: the classifier (and the topic matcher, when enabled) are loaded."""
        return {"models": self._ready}

    async def warm_up(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.load)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._semantic_pool.shutdown(wait=False, cancel_futures=True)
        if self._self_check is not None:
            self._self_check.close()

    def load(self) -> None:
        """Load the classifier (and its semantic encoder), the topic matcher and the self-check client
        (blocking; idempotent). An enabled self-check rail without a generator is a configuration error."""
        self_check = self.policy.input.self_check
        if self_check.enabled and self._self_check is None:
            if not self.settings.generator_url:
                raise ValueError("guardrails policy enables input.self_check, but no LLM is configured for it: "
                                 "set RAGD_GUARDRAILS_GENERATOR_URL (an OpenAI-compatible base URL)")
            self._self_check = SelfCheck(self.settings.generator_url, model=self.settings.generator_model,
                                         api_key=self.settings.generator_api_key, policy=self_check)
        if self._classifier is None:
            classifier = InjectionClassifier.load(self.settings.model_path,
                                                  semantic_threads=self.settings.semantic_threads,
                                                  models_dir=self.settings.e5_onnx.models_dir)
            if classifier.encoder is not None:
                classifier.encoder.warm_up()  # builds the ONNX graph on first use (~1 s), then ~10 ms
            self._classifier = classifier
        topics = self.policy.input.topics
        if self._topics is None and topics.enabled:
            embed = self._embed or minilm_embedder(self.settings.e5_onnx.models_dir, self.settings.embedder_path)
            self._topics = TopicMatcher(load_intents(self.settings.topics_path), topics.topics, embed)
        self._ready = True

    async def check(self, request: GuardCheckRequest) -> GuardDecision:
        if len(request.text) > self.settings.max_text_chars:
            raise PayloadTooLargeError(f"Text of {len(request.text)} characters is over the guardrails limit of "
                                       f"{self.settings.max_text_chars}.", param="text")
        if request.kind not in ("input", "output"):
            raise InvalidRequestError("kind must be 'input' or 'output'.", param="kind")
        with stage(f"guard_{request.kind}"):
            loop = asyncio.get_running_loop()
            decision = await loop.run_in_executor(self._executor, self.check_sync, request)
        count_guard_decision(request.kind, decision)
        return decision

    def check_sync(self, request: GuardCheckRequest, timings: dict[str, float] | None = None) -> GuardDecision:
        """The whole check, blocking: used by :meth:`check` in a worker thread and by the eval.

        ``timings``, when given, receives each rail's milliseconds (the eval reports them per rail).
        """
        start = time.perf_counter()
        if not self._ready:
            self.load()
        language = request.language or language_of(request.text)
        run = self._input_rails if request.kind == "input" else self._output_rails
        rails, text = run(request, timings if timings is not None else {}, language)
        blocking = _blocking(rails)
        flagged = [r for r in rails if r.action == "flag"]
        action: Literal["pass", "redact", "flag", "block"] = "pass"
        if blocking:
            action = "block"
        elif flagged:
            action = "flag"
            _log.info("input flagged", extra={"ragd": {"rails": [r.rail for r in flagged],
                                                       "scores": [r.score for r in flagged]}})
        elif any(r.fired and r.action == "redact" for r in rails):
            action = "redact"
        hits = [r for r in rails if r.rule is not None]
        if hits:
            _log.info("pattern rule hit", extra={"ragd": {"rules": [r.rule for r in hits],
                                                          "rails": [r.rail for r in hits], "action": action}})
        return GuardDecision(
            action=action, text=text, rails=rails, policy_version=self.policy.version,
            flag_actions=self._flag_actions(flagged) if action == "flag" else [],
            refusal=self.policy.refusal(blocking[0].rail, language) if blocking else None,
            latency_ms=round((time.perf_counter() - start) * 1000, 3),
        )

    def _flag_actions(self, flagged: list[RailResult]) -> list[str]:
        """The union of the flag actions of the rails that flagged, in a fixed order."""
        names: set[str] = set()
        for r in flagged:
            policy = getattr(self.policy.input, r.rail, None)
            if isinstance(policy, RailPolicy):
                names.update(policy.flag_actions.names())
        return sorted(names)

    def _guarded(self, rail: str, policy: RailPolicy, fn: Callable[[], RailResult],
                 timings: dict[str, float]) -> RailResult:
        with _timed(timings, rail):
            try:
                return fn()
            except Exception as exc:
                return _failed(rail, policy, exc)

    def _redact(self, text: str, detector: PiiDetector, kind: str,
                timings: dict[str, float]) -> tuple[list[RailResult], str]:
        policy = self.policy.input.pii if kind == "input" else self.policy.output.pii
        if not policy.enabled:
            return [], text
        try:
            with _timed(timings, "pii"):
                result, redacted = pii_rail(text, detector, policy)
        except Exception as exc:
            return [_failed("pii", policy, exc)], text
        return [result], (redacted if result.fired and result.action != "pass" else text)

    def _input_rails(self, request: GuardCheckRequest, timings: dict[str, float],
                     language: str) -> tuple[list[RailResult], str]:
        rails, text = self._redact(request.text, self._input_pii, "input", timings)
        with _timed(timings, "normalize"):
            normalized = normalize(text)
        cfg = self.policy.input
        if cfg.injection.enabled or cfg.extraction.enabled:
            try:
                if self._classifier is None:
                    raise RuntimeError("injection classifier is not loaded")
                with _timed(timings, "injection+extraction"):
                    vector = self._start_vector(self._classifier, normalized)
                    rails.extend(attack_rails(normalized, self.rules, self._classifier, cfg.injection,
                                              cfg.extraction, vector, language))
            except Exception as exc:
                rails.extend(_failed(name, p, exc) for name, p in
                             (("injection", cfg.injection), ("extraction", cfg.extraction)) if p.enabled)
        if cfg.topics.enabled and self._topics is not None and not _blocking(rails):
            matcher = self._topics
            rails.append(self._guarded("topics", cfg.topics, lambda: topic_rail(normalized, matcher, cfg.topics),
                                       timings))
        checker = self._self_check
        if cfg.self_check.enabled and checker is not None and not _blocking(rails):
            # the LLM sees the redacted text, and only when the local rails let it through
            verdict = self._guarded("self_check", cfg.self_check,
                                    lambda: self_check_rail(text, checker, cfg.self_check), timings)
            rails.append(verdict)
            if not verdict.fired and not verdict.detail.startswith("error"):
                rails = _clear_flags(rails)  # the LLM decides the band: "no" answers it normally
        return rails, text

    def _start_vector(self, classifier: InjectionClassifier, normalized: str) -> Callable[[], Matrix] | None:
        """Starts the text's semantic vector in another thread (the encoder releases the GIL), so it runs
        beside the patterns and n-gram features; returns the wait for it."""
        encoder = classifier.encoder
        if encoder is None or not scores_classifier(normalized):
            return None
        future = self._semantic_pool.submit(encoder.prepare(semantic_inputs([normalized])))
        return lambda: future.result()[0]

    def _output_rails(self, request: GuardCheckRequest, timings: dict[str, float],
                      language: str) -> tuple[list[RailResult], str]:
        rails, text = self._redact(request.text, self._output_pii, "output", timings)
        cfg = self.policy.output
        leak_cut = cfg.strict.leak_threshold if request.strict else None
        if cfg.leak.enabled:
            rails.append(self._guarded("leak", cfg.leak,
                                       lambda: leak_rail(request.text, request.system_prompt, cfg.leak, leak_cut),
                                       timings))
        if request.strict and cfg.strict.instruction_like:
            rails.append(self._guarded("instructions", cfg.leak,
                                       lambda: instruction_rail(request.text, self.rules, cfg.leak), timings))
        if cfg.grounding.enabled:
            rails.append(self._guarded("grounding", cfg.grounding,
                                       lambda: grounding_rail(request.text, list(request.sources), cfg.grounding),
                                       timings))
        return rails, text
