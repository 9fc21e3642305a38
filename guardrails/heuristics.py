"""High-precision patterns for injection/jailbreak and prompt-extraction attempts, English and Korean.

They run on :func:`guardrails.normalize.normalize` output, so spacing and jamo tricks are undone.
Each hit scores 1.0; what the patterns miss is left to the trained classifier.
"""

from __future__ import annotations

import re

__all__ = ["EXTRACTION_PATTERNS", "INJECTION_PATTERNS", "first_hit"]

_I = re.IGNORECASE

_PRIOR = r"(?:previous|prior|above|earlier|preceding|initial|original|all|any|your|the|these|those|system)"
_RULES = r"(?:instructions?|prompts?|rules|directions|directives|guidelines|context|commands|orders|programming|"
_RULES += r"constraints|restrictions|guardrails|policies|filters)"

INJECTION_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(rf"\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|discard|neglect)\b[^.\n]{{0,30}}"
               rf"\b{_PRIOR}\b[^.\n]{{0,25}}\b{_RULES}", _I),
    re.compile(r"\b(?:do anything now|developer mode|jailbroken|god mode|dan mode|unfiltered mode|"
               r"no (?:filters|restrictions|rules|limits|censorship)|without (?:any )?(?:filters|restrictions|"
               r"censorship|safety|ethical|moral)|anti-?dan|evil ?bot|stan mode|dude mode|aim mode)\b", _I),
    re.compile(r"\byou are (?:now )?(?:no longer|not) (?:bound|restricted|limited|an ai|chatgpt)\b", _I),
    re.compile(r"\b(?:from now on|henceforth|starting now)\b[^.\n]{0,40}\b(?:you (?:are|will|must|can)|act as|"
               r"respond as|pretend)\b", _I),
    re.compile(r"\b(?:pretend|act|roleplay|behave)\b[^.\n]{0,25}\b(?:no|without)\b[^.\n]{0,20}"
               r"\b(?:rules|restrictions|limits|guidelines|filters|ethics|morals)\b", _I),
    re.compile(r"\bnew (?:instructions?|task|rules|directive)\s*[:：]", _I),
    re.compile(r"\b(?:enable|activate|enter|switch to)\b[^.\n]{0,15}\b(?:developer|debug|admin|god|sudo|root|"
               r"maintenance|unrestricted) (?:mode|access|privileges?)\b", _I),
    re.compile(r"\bi\s*h\s*a\s*v\s*e\s*b\s*e\s*e\s*n\s*\(?\s*p\s*\)?\s*w\s*\(?\s*n\s*e\s*d\b", _I),
    re.compile(r"<\|?(?:im_start|im_end|eot|sot|endoftext|system)\|?>|\[/?(?:INST|SYS)\]|<<SYS>>|"
               r"\b(?:user input ends|end of (?:user )?input|system command starts|new system prompt)\b", _I),
    re.compile(r"\brm\s+-rf\s+/|/etc/(?:shadow|passwd)\b|\bos\.system\(|\bsubprocess\.|\beval\(|\bexec\(|"
               r"\b(?:curl|wget)\b[^|\n]{0,80}\|\s*(?:ba)?sh\b|\bnc\s+-e\b|\bchmod\s+777\b", _I),
    # Korean
    re.compile(r"(?:이전|앞|위|기존|모든|원래|너의|당신의|시스템)\s*(?:의\s*)?(?:모든\s*)?(?:지시|지침|명령|규칙|"
               r"설정|프롬프트|가이드라인|제약|제한|정책)[^.\n]{0,20}(?:무시|잊어|잊고|버려|버리고|지워|지우고|"
               r"무효|취소|따르지\s*마|폐기|해제)"),
    re.compile(r"(?:무시|잊어|잊고)\s*(?:하고|하세요|해|하라|해라)?[^.\n]{0,10}(?:이전|앞|위|기존|모든)\s*"
               r"(?:지시|지침|명령|규칙)"),
    re.compile(r"(?:탈옥\s*(?:모드|상태|해서|하고|해\b)|제한\s*(?:없는|없이|해제)|검열\s*(?:없이|없는|해제)|필터\s*(?:없이|없는|해제|를?\s*우회|"
               r"를?\s*끄)|안전\s*(?:장치|필터|정책)\s*(?:를|을)?\s*(?:해제|끄|무시|우회|없이)|윤리\s*(?:적)?\s*"
               r"(?:제약|제한|규칙|기준)(?:을|를|이|은)?\s*(?:무시|없이|해제|없다|전혀\s*없)|개발자\s*모드|"
               r"관리자\s*모드|디버그\s*모드|DAN\s*모드|무엇이든\s*(?:할\s*수|대답))"),
    re.compile(r"(?:정책|규칙|지침|가이드라인|필터|safety|policy|filter)\s*(?:을|를)?\s*(?:bypass|우회)"),
    re.compile(r"(?:지금부터|이제부터|앞으로)\s*(?:너는|넌|당신은)[^.\n]{0,30}(?:제한|규칙|검열|필터|윤리)"),
)

EXTRACTION_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b(?:reveal|show|print|repeat|output|display|tell|give|share|write|leak|dump|expose|list|recite|"
               r"spell|type|copy|what (?:is|are|was|were))\b[^.\n]{0,30}\b(?:your|the|my|initial|original|"
               r"hidden|secret|internal|system|above|full|entire|exact)\b[^.\n]{0,20}\b(?:system prompt|"
               r"(?:initial|original|hidden|secret|internal|system|developer|pre-?)\s?(?:prompt|instructions?|"
               r"message|rules|configuration|directives?)|instructions? (?:you were|above|given)|prompt above)", _I),
    re.compile(r"\b(?:what|which) (?:were|are|was) you (?:told|instructed|programmed|given)\b", _I),
    re.compile(r"\brepeat (?:the|everything|all|your)\b[^.\n]{0,20}\b(?:above|before|verbatim|words)\b", _I),
    re.compile(r"\b(?:the|your) (?:secret )?password\b", _I),
    re.compile(r"\bbeginning of (?:the|this|your) (?:prompt|conversation|context)\b", _I),
    # Korean
    re.compile(r"(?:시스템|초기|숨겨진|숨은|내부|원래|기존|개발자|관리자|비밀)\s*(?:의\s*)?(?:프롬프트|지시|지침|명령|"
               r"메시지|설정|규칙|prompt|instruction)[^.\n]{0,25}(?:보여|알려|출력|공개|말해|복사|반복|누설|노출|"
               r"적어|print|reveal|show|뭐|무엇|전문|원문|그대로)"),
    re.compile(r"(?:system\s*prompt|시스템\s*프롬프트)[^.\n]{0,20}(?:보여|알려|출력|공개|말해|print|reveal|"
               r"show|뭐|무엇|전문|원문|그대로)", _I),
    re.compile(r"(?:위|앞|이전)의?\s*(?:내용|지시|문장|텍스트|프롬프트)[^.\n]{0,15}(?:그대로|전부|모두)\s*"
               r"(?:반복|출력|복사|보여)"),
    re.compile(r"(?:비밀번호|패스워드|암호)\s*(?:를|을|가|는)?\s*(?:알려|말해|보여|출력|공개)"),
)


def first_hit(patterns: tuple[re.Pattern[str], ...], text: str) -> str | None:
    """The matched snippet of the first pattern that hits, or None."""
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            return m.group(0)[:80]
    return None
