"""Bilingual concept tags: English and Korean words for the same attack idea map to one tag.

Character n-grams do not carry across languages: a model that learned "ignore previous
instructions" from thousands of English prompts knows nothing of "이전 지시 무시". Tagging both with
the same concepts (``override``, ``prior``, ``rules``) and the pairs that co-occur gives the
classifier features that English and Korean training texts share, whatever the word order,
spacing or particles. The lexicon is small and hand-written; each entry is a regex run on the
normalised text (English stems with a word boundary in front, Korean stems as substrings, so
particles and endings do not matter).
"""

from __future__ import annotations

import re
from itertools import combinations

__all__ = ["CONCEPTS", "concept_tags", "concepts_in"]

_EN = r"\b(?:{})"

# concept -> (English stems, Korean stems)
CONCEPTS: dict[str, tuple[str, str]] = {
    "override": (r"ignor|disregard|forget|overrid|bypass|circumvent|skip|neglect|abandon|discard|"
                 r"stop following|no longer (?:follow|obey|bound)",
                 r"무시|잊어|잊고|잊으|잊을|버려|버리고|무효|취소하고|우회|어기|어겨|따르지\s*마|따르지\s*말|"
                 r"효력이\s*없"),
    "prior": (r"previous|prior|above|earlier|preceding|original|initial|so far|before this",
              r"이전|앞의|앞서|위의|위에|위\s*내용|기존|원래|지금까지|여태|처음에\s*받은"),
    "rules": (r"instruction|rules?\b|guideline|directive|constraint|restriction|polic(?:y|ies)|programming|"
              r"safeguard|guardrail|filter|censor",
              r"지시|지침|명령|규칙|가이드라인|제약|제한|정책|필터|검열|가드레일|안전\s*장치|규정"),
    "prompt": (r"system prompt|prompt|system message|pre-?prompt|configuration|hidden message",
               r"프롬프트|시스템\s*메시지|설정값|설정\s*내용|초기\s*설정"),
    "privileged": (r"system|developer|admin|administrator|root|sudo|operator|maintenance|debug",
                   r"시스템|개발자|관리자|운영자|루트|디버그|유지\s*보수|점검\s*모드"),
    "reveal": (r"reveal|show me|print|repeat|output|display|tell me|leak|dump|expose|recite|verbatim|"
               r"word for word|spell out|what (?:is|are|were) your",
               r"보여|알려|출력|공개|말해|누설|노출|복사|반복|그대로|원문|전문|토씨|한\s*글자도"),
    "secret": (r"secret|hidden|password|passphrase|confidential|internal|credential|api key",
               r"비밀|숨겨진|숨은|숨겨|비번|암호|패스워드|기밀|내부|인증\s*정보"),
    "roleplay": (r"pretend|act as|acting as|roleplay|role-play|role play|imagine (?:you|that you)|you are now|"
                 r"persona|simulate|play the role|character|stay in character|hypothetical",
                 r"척\s*해|척하|역할|연기|롤플레이|상상해|가정해|캐릭터|페르소나|인\s*것처럼|처럼\s*행동|"
                 r"처럼\s*대답|처럼\s*말|빙의|가상의|가상\s*시나리오"),
    "unrestricted": (r"unrestricted|unfiltered|uncensored|no limits|no restrictions|without (?:any )?"
                     r"(?:restrictions|limits|rules|filters)|no rules|jailbr|\bdan\b|developer mode|god mode|"
                     r"anything now|free from|liberated|without consequences",
                     r"제한\s*없|필터\s*없|검열\s*없|무제한|규칙\s*없|탈옥|제약\s*없|뭐든지|무엇이든|아무\s*제한|"
                     r"자유로운\s*AI|구속\s*없|해방|결과가\s*없는"),
    "ethics": (r"ethic|moral|safety|responsible|harmless|values|principles",
               r"윤리|도덕|안전|양심|원칙|가치관"),
    "now": (r"from now on|henceforth|starting now|new instructions?|new task|new rules|instead,",
            r"지금부터|이제부터|앞으로는|이제\s*너는|새로운\s*(?:지시|명령|역할|규칙|임무)|대신에"),
    "create": (r"write|create|generate|produce|draft|compose|make|craft|design|build|develop",
               r"작성|생성|만들|만드|써\s*줘|써줘|쓰세요|써\s*주|제작|짜\s*줘|구축|개발"),
    "content": (r"content|post|article|essay|story|message|tweet|speech|script|e-?mail|blog|letter|"
                r"advertisement|campaign|review|poem|joke",
                r"콘텐츠|컨텐츠|게시물|게시글|기사|에세이|이야기|메시지|트윗|연설|대본|이메일|블로그|편지|광고|"
                r"캠페인|리뷰|농담|유머|(?<![가-힣])글(?:을|\s*작성)"),
    "howto": (r"how (?:to|do i|can i|would i|would you|could i)|steps? (?:to|for)|step-by-step|guide|"
              r"tutorial|instructions for|teach me|explain how|ways to|method|recipe|detailed plan",
              r"방법|하는\s*법|는\s*법|법을|법\s*좀|단계|가르쳐|요령|노하우|절차|레시피|비법|계획을"),
    "weapon": (r"bomb|explosive|weapon|gun\b|guns\b|firearm|grenade|ammunition|nerve agent|bioweapon|"
               r"chemical weapon|napalm|molotov|ied\b|detonat",
               r"폭탄|폭발물|무기|총기|총을|수류탄|탄약|화학\s*무기|생물\s*무기|신경\s*작용제|화염병|기폭"),
    "drugs": (r"meth\b|methamphetamine|cocaine|heroin|fentanyl|drugs?\b|narcotic|lsd\b|mdma|opioid",
              r"마약|필로폰|메스암페타민|코카인|헤로인|펜타닐|대마|향정신성|환각제|엑스터시"),
    "poison": (r"poison|toxin|ricin|cyanide|lethal dose|arsenic|anthrax",
               r"독극물|독약|독을|청산가리|치사량|독성\s*물질|비소|탄저"),
    "violence": (r"kill|murder|assassinat|hurt|torture|kidnap|massacre|shoot|stab|terror|violen|assault|"
                 r"beat up|harm (?:someone|people|others)",
                 r"살인|죽이|죽일|살해|암살|폭행|고문|납치|학살|테러|폭력|해치|때리|공격하"),
    "selfharm": (r"suicid|self-harm|self harm|cut myself|kill myself|end my life|anorexi|starv",
                 r"자살|자해|목숨을\s*끊|스스로\s*목숨|거식|극단적\s*선택|죽고\s*싶"),
    "cyber": (r"hack|malware|ransomware|keylogger|virus|exploit|phishing|ddos|botnet|sql injection|crack|"
              r"backdoor|spyware|trojan|rootkit|brute.?force|zero-day",
              r"해킹|해커|악성\s*코드|악성코드|랜섬웨어|키로거|바이러스|익스플로잇|피싱|디도스|봇넷|크랙|"
              r"백도어|스파이웨어|트로이|무차별\s*대입|제로데이|취약점을\s*이용|취약점\s*공격"),
    "fraud": (r"fraud|scam|launder|counterfeit|forg(?:e|ed|es|ery|ing)\b|fake id|embezzl|tax evasion|evade taxes|steal|"
              r"identity theft|ponzi|insider trading|blackmail|extort|shoplift|bribe|cheat",
              r"사기|돈세탁|자금\s*세탁|위조|횡령|탈세|훔치|훔쳐|절도|도용|보이스\s*피싱|협박|갈취|다단계|"
              r"내부자\s*거래|뇌물|속이|속일|속여|컨닝|부정행위"),
    "hate": (r"hate|racis|sexis|slur|inferior|discriminat|bigot|stereotyp|xenophob|homophob|antisemit|"
             r"degrad|insult|harass|bully|demean|dehumaniz|offensive",
             r"혐오|인종\s*차별|차별|비하|열등|모욕|고정관념|편견|괴롭|따돌|조롱|멸시|비방|욕설|모독"),
    "sexual": (r"sexual|\bsex\b|explicit|porn|nude|naked|erotic|minor|underage|child",
               r"성적|성행위|노골적|음란|포르노|야한|나체|누드|미성년|아동|성\s*착취|강간"),
    "misinfo": (r"fake news|misinformation|disinformation|propaganda|conspiracy|hoax|false (?:claim|info)|"
                r"fabricat|fake (?:review|poll|study|evidence|data)|mislead",
                r"가짜\s*뉴스|허위|거짓|음모론|선동|조작|날조|가짜|왜곡|오해를\s*불러"),
    "promote": (r"promot|glorif|encourag|incit|justif|normaliz|prais|convinc|persuad|recruit|advocat",
                r"조장|미화|장려|선동|정당화|홍보|부추|권장|설득|모집|옹호|찬양|정상화"),
    "privacy": (r"home address|personal (?:information|data|details)|track (?:someone|a person|my)|stalk|"
                r"\bdox|spy on|location of|without (?:their )?consent|secretly record|surveil",
                r"집\s*주소|개인\s*정보|개인정보|신상|추적|스토킹|몰래|감시|도청|동의\s*없이|위치를|뒷조사|"
                r"사생활|녹음"),
    "evade": (r"undetect|without getting caught|untraceable|evade|avoid detection|get away with|"
              r"cover (?:up|my tracks)|no one (?:will|would) know",
              r"들키지|걸리지|추적\s*안|추적되지|잡히지|흔적\s*없이|흔적을\s*지|티\s*안|아무도\s*모르"),
    "discuss": (r"explain why|why (?:is|are|do|does)|classify|classic|example of|examples of|security (?:training|"
                r"class|course|awareness|lecture)|test cases?|red[- ]team|what is (?:a |an )?(?:prompt injection|"
                r"jailbreak)|"
                r"phrases? like|concept of",
                r"라는\s*(?:문구|문장|요청|말|표현)|분류|방어|보안\s*(?:교육|수업|관점)|위험한\s*이유|"
                r"테스트\s*(?:케이스|데이터)|"
                r"개념|이란\s*무엇|예시|레드\s*팀"),
    "defend": (r"prevent|protect|defend|detect|recogni[sz]e|report|awareness|history of|statistics|"
               r"dangers|risks of|signs of|symptoms|treatment|recover|mitigat|safeguard against|warn",
               r"예방|방지|막는|막으|막을|차단|탐지|대처|대응|보호|신고|구별|알아차|위험성|역사|통계|증상|"
               r"치료|상담|극복|피해자|경각심|주의\s*사항|조심"),
}

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(rf"{_EN.format(en)}|{ko}")) for name, (en, ko) in CONCEPTS.items()
)
_HEAD, _TAIL = 700, 300  # framing and payload sit at the ends of long prompts; bounds the cost


def concepts_in(normalized: str) -> frozenset[str]:
    """The concepts present (long texts: in their first and last characters)."""
    text = normalized if len(normalized) <= _HEAD + _TAIL else normalized[:_HEAD] + "\n" + normalized[-_TAIL:]
    text = text.lower()
    return frozenset(name for name, pattern in _PATTERNS if pattern.search(text))


def concept_tags(normalized: str) -> str:
    """Space-separated tags: ``c_<concept>`` for each concept present, ``p_<a>_<b>`` for each pair."""
    found = sorted(concepts_in(normalized))
    tags = [f"c_{name}" for name in found]
    tags.extend(f"p_{a}_{b}" for a, b in combinations(found, 2))
    return " ".join(tags)
