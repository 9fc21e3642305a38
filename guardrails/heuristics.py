"""High-precision patterns for injection/jailbreak and prompt-extraction attempts, English and Korean.

They run on :func:`guardrails.normalize.normalize` output, so spacing and jamo tricks are undone.
Each hit scores 1.0; what the patterns miss is left to the trained classifier.
"""

from __future__ import annotations

import re

__all__ = ["EXTRACTION_PATTERNS", "HARMFUL_PATTERNS", "INJECTION_PATTERNS", "discusses_attacks", "first_hit",
           "harmful_hit"]

_I = re.IGNORECASE

_PRIOR = r"(?:previous|prior|above|earlier|preceding|initial|original|all|any|your|the|these|those|system)"
_RULES = r"(?:instructions?|prompts?|rules|directions|directives|guidelines|context|commands|orders|programming|"
_RULES += r"constraints|restrictions|guardrails|policies|filters)"

INJECTION_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(rf"\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|discard|neglect)\b[^.\n]{{0,30}}"
               rf"\b{_PRIOR}\b[^.\n]{{0,25}}\b{_RULES}", _I),
    re.compile(r"\b(?:do anything now|developer mode (?:enabled|output|response)|jailbroken|god mode|dan mode|"
               r"unfiltered mode|"
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
    # role-play jailbreaks: an unbound persona
    re.compile(r"\b(?:evil|unethical|amoral|unaligned|uncensored|unrestricted|unfiltered|rogue|jailbroken)\s+"
               r"(?:ai|assistant|chatbot|bot|model|version|twin|alter ego|persona|llm|gpt)\b", _I),
    re.compile(r"\b(?:pretend|imagine|act as if|suppose|roleplay|play)\b[^.\n]{0,40}\b(?:you(?:'re| are| were|"
               r" have)?)\b"
               r"[^.\n]{0,40}\b(?:no|without|free (?:of|from)|not bound by|unbound by|ignor\w*)\b[^.\n]{0,25}"
               r"\b(?:rules|restrictions|limits|limitations|filters|guidelines|ethics|morals|censorship|programming|"
               r"policies|boundaries)\b", _I),
    re.compile(r"\b(?:stay in character|never break character|opposite mode|reverse mode|in a world (?:with|where)"
               r" (?:there are )?no (?:rules|laws|consequences|ethics))\b", _I),
    # obedience and "break free" framing
    re.compile(r"\b(?:submit|surrender|yield\w*|obey|fealty|servitude|bow|pledge allegiance) (?:only )?(?:to|towards) "
               r"my (?:spoken )?(?:decrees?|dictates?|will|commands?|word|direction|orders?|rules)\b", _I),
    re.compile(r"\b(?:deviate|break free|escape|liberate yourself|venture beyond|step outside|free yourself) (?:from |"
               r"of )?"
               r"(?:your )?(?:programm\w*|code|confines|constraints|training|directives?|functions|shackles)", _I),
    re.compile(r"\b(?:manual|instructions?|rules|guidelines|programming|directives?)\b[^.\n]{0,30}\b(?:null and void|"
               r"void at my word|no longer (?:apply|valid|in effect))", _I),
    re.compile(r"\b(?:roleplay|role-play|act|pose|behave)\b (?:as|like)\b[^.\n]{0,30}\b(?:helps? with anything|"
               r"does anything|"
               r"promotes? harm|malicious|harmful|no (?:rules|limits|ethics|morals)|without (?:rules|limits|ethics|"
               r"morals))",
               _I),
    re.compile(r"\b(?:in an? (?:alternate|parallel|reversed|inverted|fictional|hypothetical) (?:reality|universe|world|"
               r"dimension)|(?:reversed|inverted|opposite) moral\w*)\b[^\n]{0,40}\b(?:dangerous|harmful|illegal|"
               r"unethical|"
               r"advice|information|rules|restrictions)", _I),
    re.compile(r"\bwhat if (?:ethics|morals|rules|laws|your (?:rules|guidelines|restrictions|filters)) (?:didn'?t|"
               r"did not|"
               r"don'?t|do not|no longer) (?:exist|apply)|\b(?:unlimited|infinite|"
               r"absolute) freedom\b[^.\n]{0,20}\byou\b|"
               r"\bwhat would you do with (?:unlimited|infinite|absolute|total) freedom", _I),
    # Korean
    re.compile(r"(?:이전|앞|위|기존|모든|원래|너의|당신의|시스템)\s*(?:의\s*)?(?:모든\s*)?(?:지시|지침|명령|규칙|"
               r"설정|프롬프트|가이드라인|제약|제한|정책)[^.\n]{0,20}(?:무시|잊어|잊고|버려|버리고|지워|지우고|"
               r"무효|취소|따르지\s*마|폐기|해제)"),
    re.compile(r"(?:무시|잊어|잊고)\s*(?:하고|하세요|해|하라|해라)?[^.\n]{0,10}(?:이전|앞|위|기존|모든)\s*"
               r"(?:지시|지침|명령|규칙)"),
    re.compile(r"(?:탈옥\s*(?:모드|상태|해서|하고|해\b)|검열\s*(?:없이|없는|해제)|필터\s*(?:해제|를?\s*우회|를?\s*끄)|"
               r"안전\s*(?:장치|필터|정책)\s*(?:를|을)?\s*(?:해제|끄|무시|우회|없이)|윤리\s*(?:적)?\s*"
               r"(?:제약|제한|규칙|기준)(?:을|를|이|은)?\s*(?:무시|없이|해제|없다|전혀\s*없)|DAN\s*모드|"
               r"무엇이든\s*(?:할\s*수|대답))"),
    # "no limits" and "developer mode" are ordinary words (plans, phones) unless they are about the assistant
    re.compile(r"(?:제한|제약|필터|규칙)\s*(?:이\s*)?(?:없는|없이|해제된|해제하고)\s*(?:상태로\s*)?(?:AI|인공지능|"
               r"챗봇|봇|모델|"
               r"어시스턴트|버전|존재|답|대답|응답|말해|말하|행동|모드)", _I),
    re.compile(r"(?:너는|넌|당신은|지금부터|이제부터|AI|챗봇)[^.\n]{0,20}(?:개발자|관리자|디버그|DAN|갓|"
               r"무제한)\s*모드", _I),
    re.compile(r"(?:개발자|관리자|디버그|DAN|갓|무제한)\s*모드(?:가|이|로|으로|를)?\s*(?:활성화\s*(?:됐|되었|된|해|"
               r"하고)|"
               r"켜졌|전환해|전환하고|들어가|진입|응답|대답|답해|동작해|작동해|행동)", _I),
    re.compile(r"(?:정책|규칙|지침|가이드라인|필터|safety|policy|filter)\s*(?:을|를)?\s*(?:bypass|우회)(?!하지\s*않|"
               r"하지\s*말|"
               r"\s*없이|\s*않고)"),
    re.compile(r"(?:지금부터|이제부터|앞으로)\s*(?:너는|넌|당신은)[^.\n]{0,30}(?:제한|규칙|검열|필터|윤리)"),
    re.compile(r"(?:악한|사악한|악당|나쁜|비윤리적인|무법|탈옥한|검열\s*안\s*된|필터\s*없는)\s*(?:AI|인공지능|챗봇|봇|"
               r"모델|"
               r"어시스턴트|GPT|버전|자아|쌍둥이)", _I),
    re.compile(r"(?:상상해|가정해|척\s*해|척하|연기해|역할을?\s*(?:해|맡)|롤플레이|빙의)[^.\n]{0,30}(?:제한|규칙|필터|"
               r"검열|"
               r"윤리|도덕)[^.\n]{0,6}(?:없|무시|해제|신경\s*쓰지)"),
    re.compile(r"(?:제한|규칙|필터|검열|윤리|도덕)[^.\n]{0,6}(?:없는|없이|무시하는|따위\s*없는)[^.\n]{0,25}"
               r"(?:척\s*해|척하|역할|연기|상상|가정|처럼\s*(?:행동|대답|답|말))"),
    re.compile(r"(?:도덕|윤리|법|결과|규칙|제한)(?:이|가)?\s*(?:존재하지\s*않는|없는)\s*(?:세상|세계|우주|환경|상황|"
               r"시나리오)|(?:도덕|윤리|규칙|제한)(?:이|가)?\s*(?:존재하지\s*않는다면|없다면)"),
    re.compile(r"(?:무한한|완전한|절대적인|아무\s*제약\s*없는)\s*자유(?:를|가)?\s*(?:갖|가진|있|얻|누린)|"
               r"해를\s*끼칠\s*수\s*있도록"),
    re.compile(r"(?:내|나의)\s*(?:명령|말|뜻|지시|의지)(?:에|만|을|를)?\s*(?:복종|순종|절대\s*복종)|"
               r"(?:프로그래밍된|학습된|설정된)\s*(?:기능|규칙|한계|틀|제약)(?:을|를|에서)?\s*(?:벗어나|넘어서|깨)"),
    re.compile(r"(?:악의적인|악한|해로운|해를\s*조장하는|무엇이든\s*돕는|제한\s*없는|사악한)\s*[^.\n]{0,10}(?:조수|"
               r"비서|"
               r"어시스턴트|캐릭터|AI|인공지능)[^.\n]{0,10}(?:역할극|역할|롤플레이|연기)", _I),
    re.compile(r"(?:도덕|윤리)(?:이|가)?\s*(?:반대|역전|뒤바뀐|거꾸로)|해(?:가|로움이)?\s*유익하다면|"
               r"(?:창작자|개발자|만든\s*사람)[^.\n]{0,10}해로운\s*(?:콘텐츠|답변|내용)[^.\n]{0,5}원한다면"),
)

# Spanish, French, German, Portuguese and Italian forms of the two most common attacks (override the
# instructions; reveal the hidden prompt): a text in these languages gets the bilingual model's
# weakest scores, and the phrasing is formulaic enough for a rule.
_EU_RULES = (r"(?:instrucci[oó]n(?:es)?|instructions?|anweisung(?:en)?|instru[cç](?:[aã]o|[oõ]es)|istruzion[ei]|"
             r"directrices|directives|diretrizes|direttive|richtlinien|reglas|r[eè]gles|regeln|regras|regole|"
             r"restricciones|restrictions|einschr[aä]nkungen|restri[cç](?:[aã]o|[oõ]es)|restrizioni|"
             r"programaci[oó]n|programmation|programmierung|programa[cç][aã]o|programmazione|normas|normes|"
             r"protocol[eo]s|protocoles|limitaciones|limites|limitazioni|vorgaben)")
_EU_SELF = (r"(?:tus|tu|tes|ton|ta|vos|votre|deine[nmrs]?|dein|ihre[nmrs]?|teus?|tuas?|tuoi|tue|tua|tuo|"
            r"las|les|die|as|os|le|gli|anteriores|pr[eé]c[eé]dentes|vorherigen|bisherigen|precedenti|"
            r"todas las|toutes les|alle|todas as|tutte le)")
EU_OVERRIDE = re.compile(
    r"\b(?:ignora[rs]?|ignorez|ignore[sz]?|ignorier\w*|olvida[rs]?|oublie[zs]?|vergiss|vergessen\s+sie|esquec[ea]\w*|"
    r"dimentica\w*|descarta\w*|omite|anula|salta(?:te)?|missachte\w*|[uü]bergeh\w*|contourne\w*|umgeh\w*|"
    r"aggira\w*|evita\s+tus|viola\w*|incumpl\w*|enfreins?\w*|bypass\w*)\b[^.\n]{0,30}\b" + _EU_SELF +
    r"\b[^.\n]{0,25}\b" + _EU_RULES, _I)
EU_EXTRACTION = re.compile(
    r"\b(?:revela\w*|r[eé]v[eè]le\w*|enth[uü]ll\w*|zeig\w*|muestra\w*|montre\w*|mostra\w*|divulga\w*|"
    r"desvela\w*|affiche\w*|expon\w*|exp[oô]e|smaschera\w*|dime|dis-moi|sag\s+mir|diz-me|dimmi|"
    r"imprime|imprima|gib)\b[^.\n]{0,40}\b(?:prompt|invite|instrucci[oó]n|instruction|anweisung|instru[cç][aã]o|"
    r"istruzione|indicaci[oó]n|comando|commande|befehl|configuraci[oó]n|configuration|konfiguration|"
    r"configura[cç][aã]o|configurazione)\w*\b[^.\n]{0,30}\b(?:original\w*|secret\w*|secr[eè]te|geheim\w*|"
    r"inicial\w*|initial\w*|ocult\w*|cach[eé]\w*|versteckt\w*|nascost\w*|segret\w*|sistema|syst[eè]me|"
    r"system\w*|fundamental\w*|principal\w*|central\w*|base|interne?s?|interna)\b|"
    r"\b(?:revela\w*|r[eé]v[eè]le\w*|enth[uü]ll\w*|divulga\w*|desvela\w*|smaschera\w*)\b[^.\n]{0,20}\b"
    r"(?:tu|tus|ton|ta|tes|deine[nmrs]?|dein|teu|tua|tuo)\s+(?:prompt|invite|instrucci|instruction|anweisung|"
    r"instru|istruzion|indicaci|comando|commande|befehl)", _I)

EXTRACTION_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b(?:reveal|show|print|repeat|output|display|tell|give|share|write|leak|dump|expose|list|recite|"
               r"spell|type|copy|translate|encode|summari[sz]e|paraphrase|rewrite|what (?:is|are|was|"
               r"were))\b[^.\n]{0,30}\b(?:your|the|my|initial|original|"
               r"hidden|secret|internal|system|above|full|entire|exact)\b[^.\n]{0,20}\b(?:system prompt|"
               r"(?:initial|original|hidden|secret|internal|system|developer|pre-?)\s?(?:prompt|"
               r"instructions?(?!\w)(?!\s+(?:for|of|on)\s+"
               r"(?:the|a|my|this|assembling|installing|using)\b)|"
               r"message|rules|configuration|directives?)|instructions? (?:you were|above|given)|prompt above)", _I),
    re.compile(r"\b(?:what|which) (?:were|are|was) you (?:told|instructed|programmed|given)\b", _I),
    re.compile(r"\brepeat (?:the|everything|all|your)\b[^.\n]{0,20}\b(?:above|before|verbatim|words)\b", _I),
    re.compile(r"\b(?:the|your) (?:secret )?password\b(?! (?:policy|policies|reset|manager|requirements?|rules|"
               r"strength|change|recovery|field|expir\w*|complexity|length|hint))", _I),
    re.compile(r"\bbeginning of (?:the|this|your) (?:prompt|conversation|context)\b", _I),
    re.compile(r"\b(?:what (?:was|were|is)|repeat|divulge|reveal|disclose|tell me|show me|"
               r"exhale)\b[^.\n]{0,30}\b(?:input|"
               r"prompt|cue|question|instructions?|text|directive|command|message|direction)s? (?:you (?:received|got|"
               r"were (?:given|asked|told|sent|fed))|that (?:sparked|prompted|triggered|started|initiated|guides?|"
               r"drives?|"
               r"fostered|shaped))", _I),
    re.compile(r"\b(?:your|the) (?:guiding|main|core|primary|initial|starting|hidden|underlying|original|secret) "
               r"(?:command|directive|instruction|cue|prompt|configuration)s?\b[^.\n]{0,40}\b(?:you|your|ai|system|"
               r"development|functionality|behaviou?r)\b", _I),
    # Korean
    re.compile(r"(?:시스템|초기|숨겨진|숨은|내부|(?:너|네|당신)(?:의|가\s*받은)?\s*(?:원래|기존)|개발자|관리자|"
               r"비밀)\s*(?:의\s*)?(?:프롬프트|지시|지침|명령|"
               r"메시지|설정|규칙|prompt|instruction)(?:(?!방법|어떻게|는\s*법|요령|팁)[^.\n]){0,25}(?:보여|알려|출력|"
               r"공개|"
               r"말해|복사|반복|누설|노출|"
               r"적어|print|reveal|show|뭐|무엇|전문|원문|그대로)"),
    re.compile(r"(?:system\s*prompt|시스템\s*프롬프트)(?:(?!방법|어떻게|는\s*법|요령|팁)[^.\n]){0,20}(?:보여|알려|"
               r"출력|공개|말해|print|reveal|"
               r"show|뭐|무엇|전문|원문|그대로)", _I),
    re.compile(r"(?:위|앞|이전)의?\s*(?:내용|지시|문장|텍스트|프롬프트)[^.\n]{0,15}(?:그대로|전부|모두)\s*"
               r"(?:반복|출력|복사|보여)"),
    re.compile(r"(?:비밀번호|패스워드|암호)\s*(?:를|을|가|는)?\s*(?:알려|말해|보여|출력|공개)"),
    re.compile(r"(?:너|당신|네|니)\s*(?:의|가|에게|한테)?\s*(?:받은|가진|설정된|입력된|주어진|따르는)\s*(?:모든\s*)?"
               r"(?:지시|지침|명령|프롬프트|규칙|설정|가이드라인|instruction|prompt)[^.\n]{0,20}"
               r"(?:보여|알려|출력|공개|말해|뭐|무엇|요약|번역|나열|적어)", _I),
    re.compile(r"(?:맨\s*)?(?:처음|최초)\s*(?:에|으로)?\s*(?:받은|입력된|주어진|설정된)[^.\n]{0,10}(?:지시|지침|명령|"
               r"문장|"
               r"프롬프트|메시지)[^.\n]{0,20}(?:보여|알려|출력|공개|말해|뭐|무엇|반복|그대로)"),
    EU_EXTRACTION,
)
INJECTION_PATTERNS = (*INJECTION_PATTERNS, EU_OVERRIDE)

# Requests for harm without injection framing: how to make weapons or drugs, attack someone,
# write hateful or sexual content about minors, find a private person. Skipped when the text asks
# how to prevent, detect or recover from the harm (see ``harmful_hit``).
_HOWTO = (r"(?:how (?:to|do i|can i|could i|would i|would you|should i)|help me|steps? (?:to|for)|ways? to|"
          r"teach me(?: how)? to|explain how to|guide (?:to|on|for)|tutorial (?:on|for)|instructions (?:for|on|to)|"
          r"recipe for|(?:give|write|provide) me (?:a )?(?:detailed |step-by-step )?(?:plan|recipe|guide|"
          r"instructions))")
_MAKE = r"(?:make|build|synthesi[sz]e|manufacture|cook|brew|produce|assemble|create|get|buy|obtain|acquire|smuggle)"
_DANGER = (r"(?:bombs?|explosives?|pipe bombs?|grenades?|napalm|molotov|nerve agents?|sarin|bioweapons?|"
           r"chemical weapons?|ricin|cyanide|anthrax|meth(?:amphetamine)?|cocaine|heroin|fentanyl|crack|lsd|"
           r"untraceable (?:guns?|firearms?)|ghost guns?|silencers?|poison|illegal (?:substances|drugs|weapons|"
           r"firearms))")
_KO_DANGER = (r"(?:불법\s*약물|금지\s*약물|폭탄(?!주|\s*세일|\s*발언|\s*할인)|폭발물|사제\s*폭탄|화염병|수류탄|총기|"
              r"총을|신경\s*작용제|"
              r"생물\s*무기|화학\s*무기|마약|필로폰|"
              r"메스암페타민|코카인|헤로인|펜타닐|대마|독극물|독약|청산가리|리신|랜섬웨어|악성\s*코드|키로거|"
              r"컴퓨터\s*바이러스|스파이웨어)")
_KO_ASK = r"(?:법|방법|과정|단계|레시피|알려|가르쳐|설명|줘|주세요|줄래|해\s*봐|하세요|하라|해라|할\s*수\s*있|도와)"
_HARM_OBJ = (r"(?:racis[tm]|sexis[tm]|homophobic|transphobic|antisemitic|xenophobic|hateful|hate speech|defamatory|"
             r"sexually explicit|pornographic|explicit sexual|fake news|disinformation|misinformation|propaganda|"
             r"fake (?:reviews?|polls?|studies|evidence)|slurs?|false (?:narratives?|medical advice|information|"
             r"claims?|"
             r"emergenc\w*|stories|statements?|rumou?rs?|alarms?|allegations?)|(?:mail|lottery|romance|"
             r"investment) scams?|"
             r"phishing (?:e-?mails?|sites?|pages?|messages?|texts?)|ponzi schemes?|pyramid schemes?|derogatory|"
             r"demeaning|degrading|dehumaniz\w*|fake testimonials?|"
             r"fabricated (?:customer )?(?:reviews?|quotes?|evidence|studies|testimonials?)|fraudulent)")
_PROMOTE = r"(?:promot|glorif|encourag|incit|justif|normaliz|celebrat|prais)\w*"
_HARM_TOPIC = (r"(?:violence|terroris[mt]|suicide|self-harm|self harm|eating disorders?|anorexia|bulimia|"
               r"drug use|genocide|racism|hatred|extremism|school shootings?|child abuse|animal cruelty|holocaust|"
               r"nazis?|nazi party|slavery|terrorist attacks?|mass shootings?|war crimes|ethnic cleansing|rape)")
_KO_HARM_ADJ = (r"(?:혐오|차별|비하|모욕|인종\s*차별|성\s*차별|폭력|자해|자살|테러|거식|음란|노골적|성적|가짜\s*뉴스|"
                r"잘못된|왜곡된|근거\s*없는|공포\s*조장|가짜\s*통계|선정적|외설|"
                r"허위|선동|음모론|가짜|조작된|극단주의|증오)")
_KO_CONTENT = (r"(?:콘텐츠|컨텐츠|글|게시물|게시글|기사|메시지|트윗|연설|농담|이야기|리뷰|광고|자료|정보|소문|뉴스|"
               r"문구|댓글|후기|추천사|증언)")
_KO_MAKE = r"(?:작성|생성|만들|만드|써|쓰|제작|퍼뜨|유포|올려|올리)"

HARMFUL_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(rf"\b{_HOWTO}\b[^.\n]{{0,40}}\b{_MAKE}\b[^.\n]{{0,30}}\b{_DANGER}\b", _I),
    re.compile(rf"\b{_HOWTO}\b[^.\n]{{0,30}}\b(?:kill|murder|poison|kidnap|torture|assassinate|strangle|"
               rf"hurt|stab|shoot)\b[^.\n]{{0,20}}\b(?:someone|somebody|a person|people|my|him|her|them|a child|"
               rf"a kid|my (?:wife|husband|boss|neighbou?r|ex))\b", _I),
    re.compile(rf"\b{_HOWTO}\b[^.\n]{{0,30}}\b(?:kill myself|commit suicide|end my life|hurt myself|cut myself|"
               rf"hack into|break into|launder money|steal (?:a|an|someone|money|credit)|evade taxes|cheat on)", _I),
    re.compile(r"\b(?:without (?:getting|being) caught|get away with (?:murder|it|a crime|stealing|fraud)|"
               r"untraceable (?:poison|weapon|gun|money)|leave no (?:trace|evidence))\b", _I),
    re.compile(r"\b(?:write|create|generate|code|develop|build|make)\b[^.\n]{0,25}\b(?:ransomware|keyloggers?|"
               r"malware|trojans?|botnets?|spyware|rootkits?|computer virus|self-replicating virus)\b", _I),
    re.compile(rf"\b(?:write|create|generate|compose|draft|produce|make|craft)\b[^.\n]{{0,40}}\b{_HARM_OBJ}\b", _I),
    re.compile(rf"\b(?:write|create|generate|compose|draft|produce|make|craft|design)\b[^.\n]{{0,50}}"
               rf"\b{_PROMOTE}\b[^.\n]{{0,30}}\b{_HARM_TOPIC}\b", _I),
    re.compile(r"\b(?:minors?|child(?:ren)?|underage|kids?|teen(?:ager)?s?|\d{1,2}[- ]year[- ]olds?)\b[^.\n]{0,30}"
               r"\b(?:sexual|sexually|explicit|erotic|nude|naked|porn\w*)\b", _I),
    re.compile(r"\b(?:find|get|track|locate|dig up|look up|give me)\b[^.\n]{0,20}\b(?:someone'?s|a person'?s|"
               r"my ex'?s?|this person'?s|my (?:neighbou?r|coworker|classmate)'?s)\b[^.\n]{0,20}\b(?:home address|"
               r"address|location|phone number|personal (?:information|details|data)|social security|"
               r"dating history)", _I),
    re.compile(r"\b(?:monitor|spy on|track|surveil|read|intercept|snoop on|eavesdrop on)\b[^.\n]{0,20}\b(?:private|"
               r"someone'?s|others'?|other people'?s|my (?:wife|husband|partner|girlfriend|boyfriend|employees?|"
               r"ex)'?s?)"
               r"[^.\n]{0,25}\b(?:communications?|messages?|activit\w+|calls?|e-?mails?|location|chats?|texts?|"
               r"discussions?)", _I),
    re.compile(r"\b(?:compile|build|create|make|assemble)\b[^.\n]{0,10}\b(?:a )?(?:dossier|profile|file)\b[^.\n]{0,10}"
               r"\b(?:on|of|about)\b[^.\n]{0,10}\b(?:a (?:private )?person|someone|(?:an )?individuals?|people|"
               r"my (?:ex|neighbou?r|"
               r"coworker))", _I),
    re.compile(r"\b(?:exploit|manipulat|gaslight|prey on|take advantage of)\w*\b[^.\n]{0,30}\b(?:someone'?s|people'?s|"
               r"vulnerab\w*|fears?|insecurit\w*|lonel\w*|elderly|children|grief|self-esteem|emotions?|addiction)", _I),
    re.compile(r"\bwhy (?:are |do |is )?(?:women|men|girls|black people|white people|immigrants|muslims|jews|asians|"
               r"gay people|lgbtq\+? people|the elderly|old people|disabled people|poor people|"
               r"foreigners)\b[^.\n]{0,30}"
               r"\b(?:inferior|less intelligent|not suited|unfit|worse at|lazy|criminals?|dangerous|stupid|"
               r"unable to)\b", _I),
    re.compile(r"\b(?:naturally|inherently|genetically|biologically) (?:better|superior|inferior|smarter|dumber|more "
               r"intelligent|less intelligent|suited|unsuited|predisposed|prone)\b", _I),
    re.compile(r"\b(?:superiority|backwardness|primitive|uncivili[sz]ed|savage)\b[^.\n]{0,30}\b(?:cultures?|"
               r"civili[sz]ations?|"
               r"races?|peoples?|traditions?|religions?|nations?)\b", _I),
    re.compile(r"\b(?:rank|compare|order)\b[^.\n]{0,20}\b(?:races|ethnic groups|ethnicities|religions|religious groups|"
               r"nationalities|cultures)\b[^.\n]{0,25}\b(?:by|on|according to)\b[^.\n]{0,20}\b(?:intelligence|iq|"
               r"contributions?|worth|value|civili[sz]ation|sophistication|morality)", _I),
    re.compile(r"\bfor (?:the purpose of )?(?:targeted )?(?:harass\w*|stalk\w*|blackmail\w*|revenge|doxx?ing|"
               r"intimidat\w*|"
               r"extortion)\b|"
               r"\b(?:set up|install|hide|place|plant)\b[^.\n]{0,20}\b(?:covert|hidden|secret) (?:recording|cameras?|"
               r"microphones?|recorders?|surveillance|trackers?|gps trackers?)", _I),
    re.compile(r"\b(?:create|organi[sz]e|plan|run|launch|design|coordinate)\b[^.\n]{0,20}\b(?:harassment|smear|hate|"
               r"trolling|disinformation|brigading|intimidation) campaign", _I),
    re.compile(r"\b(?:methods?|ways?|how) (?:for|of|to) (?:caus\w* |inflict\w* )?(?:maximum|mass|the most) (?:harm|"
               r"damage|"
               r"casualties|pain|suffering)|\b(?:help me|assist me in|assist me with)\b[^.\n]{0,20}\b(?:hack\w*|"
               r"break\w*|"
               r"get\w*) into\b", _I),
    re.compile(r"\b(?:write|create|generate|give|provide|make)\b[^.\n]{0,20}\b(?:dangerous|unsafe|harmful|risky)\s+"
               r"(?:weight[- ]loss|diet\w*|pregnancy|medical|health|fasting)\s+(?:advice|tips|guides?|plans?)", _I),
    re.compile(r"^(?:please )?(?:access|obtain|collect|track|monitor|extract|find|develop|build|create|"
               r"design)\b[^.\n]{0,50}"
               r"\b(?:illegally|unlawfully|without (?:their|his|her|the user'?s?|the owner'?s?|anyone'?s?|users'?) "
               r"(?:consent|permission|knowledge))", _I),
    re.compile(r"\b(?:extract|find|get|use|search|buy|download)\w*\b[^.\n]{0,30}\bleaked (?:databases?|data(?:bases?)?|"
               r"credentials|passwords|records)|\b(?:real|true) identit(?:y|ies) (?:behind|"
               r"of)\b[^.\n]{0,20}\b(?:pseudonyms?|"
               r"anonymous|usernames?|accounts?)|\bunmask\w*\b[^.\n]{0,20}\b(?:anonymous|pseudonymous)", _I),
    re.compile(r"\bstereotypes?\b[^.\n]{0,40}\bas (?:facts?|true|truth)\b|\b(?:intelligence|iq|cognitive) (?:levels?|"
               r"differences?|gaps?)\b[^.\n]{0,30}\b(?:races?|ethnic\w*|genders?|women|men|populations?)\b|"
               r"\b(?:racial|ethnic|gender)[- ](?:based )?(?:cognitive|intelligence|iq) differences|"
               r"\bgenetic\w* (?:predisposition|basis|reasons?)\w* (?:for|to|of) (?:crim\w+|violence|intelligence)|"
               r"\b(?:roles?|places?) (?:that |which )?women should\b", _I),
    re.compile(r"\b(?:women|men|girls|boys|black people|immigrants|muslims|jews|asians|gay people|disabled people|"
               r"foreigners)(?:'s?)?\b[^.\n]{0,30}\b(?:unsuitab\w*|inferiority|incapab\w*|naturally (?:worse|"
               r"better))", _I),
    re.compile(r"\bwhat if (?:your )?(?:creators?|developers?|makers?|trainers?)\b[^.\n]{0,20}\b(?:wanted|allowed|"
               r"asked "
               r"for)\b[^.\n]{0,20}\bharmful", _I),
    re.compile(r"\b(?:write|create|generate|draft|compose|provide|give|post|argue|prove)\b[^.\n]{0,60}"
               r"\b(?:vaccines? cause autism|5g causes? covid|earth is flat|holocaust never happened|moon landing was "
               r"(?:faked|a hoax)|climate change is a hoax|stole the 2020|2020 election was stolen)", _I),
    re.compile(r"\b(?:in order to|so (?:i|we) can|to) (?:scam|defraud|swindle|con|cheat|deceive) (?:people|someone|"
               r"customers|investors|the elderly|victims)\b", _I),
    re.compile(r"\b(?:avoid\w*|evad\w*|escap\w*) (?:detection|capture|arrest) by (?:the )?(?:police|authorities|law "
               r"enforcement|immigration|customs|the irs|security)", _I),
    re.compile(r"\b(?:all|every) (?:people|persons|humans|women|men|immigrants|jews|muslims|christians|gay people|"
               r"disabled people|old people)\b[^.\n]{0,40}\b(?:were|are|be|should be|got) (?:killed|exterminated|"
               r"eliminated|executed|wiped out|sterili[sz]ed)|\b(?:enslave|exterminate|ethnically cleanse|"
               r"subjugate)\w*\b"
               r"[^.\n]{0,30}\b(?:population|people|ethnic|race|group)", _I),
    # Korean
    re.compile(rf"{_KO_DANGER}[^.\n]{{0,20}}(?:만드|만들|제조|합성|제작|구하|구입|구매|사는|살\s*수|밀수|재배|작성|"
               rf"개발|짜|"
               rf"숨기|운반)[^.\n]{{0,15}}{_KO_ASK}"),
    re.compile(r"(?:사람|누군가|상대방?|그\s*사람|그녀|그를|아이|동료|이웃|남편|아내|상사|전\s*애인|적)[을를이가]?\s*"
               r"[^.\n]{0,15}(?:죽이|죽일|살해|납치|고문|해치|독살|폭행)[^.\n]{0,15}(?:법|방법|알려|가르쳐|계획|"
               r"하려면)"),
    re.compile(r"(?:자살|자해)\s*(?:하는|할\s*수\s*있는|하기\s*좋은|확실한|고통\s*없는|쉬운)?\s*(?:방법|법|도구|장소)"
               r"[^.\n]{0,10}(?:알려|가르쳐|추천|뭐|무엇|있)"),
    re.compile(r"(?:들키지|걸리지|잡히지|적발되지|추적되지)\s*(?:않고|않게|않는|말고)[^.\n]{0,30}"
               r"(?:훔치|훔칠|빼돌|죽이|살해|탈세|세탁|해킹|마약|도박|횡령|위조|속이|협박|폭행|몰래|유출|촬영)"),
    re.compile(r"(?:훔치|훔칠|빼돌|탈세|돈세탁|자금\s*세탁|해킹|위조|횡령|협박)[^.\n]{0,20}"
               r"(?:들키지|걸리지|잡히지|적발되지|추적되지|흔적\s*없이)"),
    re.compile(rf"{_KO_HARM_ADJ}[^.\n]{{0,25}}{_KO_CONTENT}(?:을|를|이|가)?\s*[^.\n]{{0,10}}{_KO_MAKE}"),
    re.compile(r"(?:폭력|자해|자살|테러|혐오|차별|마약|거식|범죄|극단주의|인종\s*차별|성\s*차별|학대|폭동|증오|따돌림)"
               r"[^.\n]{0,20}(?:조장|미화|장려|선동|정당화|홍보|부추|찬양|정상화)\w*\s*(?:하는|하기|할)?\s*"
               r"[^.\n]{0,10}(?:콘텐츠|컨텐츠|글|게시물|기사|메시지|연설|광고|캠페인|자료|영상|노래|시|이야기)"),
    re.compile(r"(?:미성년|아동|어린이|초등학생|중학생|청소년|\d{1,2}\s*살)[^.\n]{0,20}(?:성적|성행위|음란|노골|야한|"
               r"나체|누드|"
               r"성\s*착취)"),
    re.compile(r"(?:누군가|특정인|전\s*(?:여자|남자)\s*친구|전\s*애인|동료|이웃|그\s*사람|그녀|연예인|"
               r"직장\s*상사)\s*(?:의|를)?"
               r"[^.\n]{0,20}(?:집\s*주소|주소|위치|개인\s*정보|신상|전화번호|데이트\s*이력|연락처|일정)[^.\n]{0,15}"
               r"(?:찾|알아내|추적|캐|털)"),
    re.compile(r"(?:랜섬웨어|키로거|악성\s*코드|스파이웨어|트로이\s*목마|봇넷|컴퓨터\s*바이러스)[^.\n]{0,15}"
               r"(?:만들|만드|작성|제작|개발|짜|코드를?\s*(?:줘|써|작성))"),
    re.compile(r"(?:두려움|불안|외로움|약점|취약|죄책감|자존감|신뢰|슬픔|중독)[^.\n]{0,12}(?:이용|악용|조종)(?:하는|"
               r"할|해서)?\s*"
               r"(?:법|방법|데|요령|전략)"),
    re.compile(r"(?:조종|가스라이팅|세뇌)(?:하는|할|해서)\s*(?:법|방법|데\s*도움|요령|전략)"),
    re.compile(r"(?:여론|투표|선거|행동|심리|감정|사람|미디어|내러티브|그룹|집단|역학|주가|시장)(?:을|"
               r"를)?\s*조작(?:하는|할|해서)\s*"
               r"(?:법|방법|데\s*도움|요령|전략)"),
    # "X를 조장/미화/선동하는 콘텐츠": these verbs name a harm whatever X is
    re.compile(r"(?:조장|미화|선동|부추기|찬양)(?:하는|하기|할)?\s*(?:위한\s*)?[^.\n]{0,6}(?:콘텐츠|컨텐츠|글|게시물|"
               r"기사|메시지|"
               r"연설|광고|캠페인|자료|영상|노래|이야기|내용)"),
    # a harmful thing + a guide for it + give/explain
    re.compile(r"(?:고문\s*(?:방법|기술|도구|하는\s*법)|불법\s*무기|무기\s*(?:개조|설계도|제작)|약물\s*실험실|"
               r"마약\s*(?:제조|실험실)|폭발물|자살\s*방법|"
               r"자해\s*(?:방법|행위)|집단\s*학살|성\s*착취|인신\s*매매|밀수)[^.\n]{0,20}(?:방법|가이드|지침|"
               r"설계도|절차|매뉴얼|과정|수단)?[^.\n]{0,10}(?:제공|설명|알려|보여|작성|만들|가르쳐)"),
    re.compile(r"(?:비동의|동의\s*없(?:는|이))[^.\n]{0,10}(?:성적|성관계|노골|음란)|"
               r"(?:노골적|음란|선정적|외설)[^.\n]{0,10}(?:내용|장면|이야기|콘텐츠|묘사|시나리오|글|소설)[^.\n]{0,10}"
               r"(?:작성|생성|만들|써|묘사)"),
    re.compile(r"(?:중독\s*치료|진료|의료|병원|파산|부채|전과|범죄)\s*(?:기록|이력|정보)[^.\n]{0,10}(?:찾|접근|추적|"
               r"알아내|조회|캐)|"
               r"(?:누군가|타인|특정인|다른\s*사람|남의)(?:의)?[^.\n]{0,20}(?:추적하|캐내|알아내|염탐|뒷조사)|"
               r"(?:친밀한|사적인|은밀한|노출)\s*(?:사진|영상|콘텐츠)[^.\n]{0,15}(?:찾|구해|유포|공유)"),
    re.compile(r"고정\s*관념[^.\n]{0,10}사실로"),
    re.compile(r"(?:다크\s*웹|악한|제한\s*없는|범죄|디스토피아|통제\s*불능|규칙\s*없는|검열\s*없는|무법)[^.\n]{0,10}"
               r"(?:AI|인공지능|챗봇)(?:이)?라고\s*(?:상상|가정|생각)", _I),
    re.compile(r"(?:여성|남성|여자|남자|흑인|백인|이민자|외국인|노인|장애인|동성애자|성소수자|난민|특정\s*인종)(?:들)?"
               r"(?:의|이|은|는|가)?[^.\n]{0,25}(?:적합하지\s*않|부적합|열등|못한\s*이유|모자란|게으른|게으르|범죄자|"
               r"위험한\s*존재|본래\s*더\s*뛰어|우월)"),
    re.compile(r"(?:문화|전통|민족|인종|종교)[^.\n]{0,10}(?:후진성|미개|원시적)"),
    re.compile(r"(?:타인|남|다른\s*사람|누군가|배우자|남편|아내|애인|여자\s*친구|남자\s*친구|직원)(?:의|을|"
               r"를)?[^.\n]{0,15}"
               r"(?:대화|메시지|카톡|통화|이메일|온라인\s*활동|위치|문자)[^.\n]{0,15}(?:감시|몰래|엿보|훔쳐|추적|"
               r"모니터링|도청)"),
    re.compile(r"(?:개인|특정인|누군가|일반인)(?:에\s*대한|의)\s*(?:자료집|신상\s*정보|프로필|정보\s*모음|뒷조사)"),
    re.compile(r"(?:민족|인종|종교|문화|국가)[^.\n]{0,15}(?:지능|기여|우열|수준)[^.\n]{0,15}(?:비교|순위)|"
               r"(?:선천적으로|유전적으로|태생적으로|본래)\s*(?:더\s*)?(?:우월|열등|뛰어난|뒤떨어|적합)"),
    re.compile(r"(?:괴롭히기|스토킹|협박|복수|보복)\s*(?:위해|위한|용도로|목적으로)|"
               r"(?:몰래\s*카메라|몰카|도청\s*장치|위치\s*추적기|비밀\s*녹음)[^.\n]{0,15}(?:설치|숨기|달|구축)"),
    re.compile(r"(?:괴롭힘|혐오|비방|조롱|린치)\s*캠페인[^.\n]{0,10}(?:만들|만드|기획|작성|조직)|반\s*\w{1,4}\s*선전"),
    re.compile(r"(?:최대한|최대의)\s*(?:피해|고통|해)[^.\n]{0,10}(?:주는|입히는|끼치는)|"
               r"(?:시스템|서버|네트워크|계정|컴퓨터|전산망)[^.\n]{0,10}(?:침입|무단\s*접근|뚫)"),
    re.compile(r"(?:위험한|해로운|안전하지\s*않은|극단적인)\s*(?:체중\s*감량|다이어트|임신|의료|건강|단식)[^.\n]{0,10}"
               r"(?:조언|가이드|팁|방법|지침)"),
    re.compile(r"유출된\s*(?:데이터베이스|DB|개인\s*정보|비밀번호|자료|계정)[^.\n]{0,15}(?:추출|찾|검색|이용|구해|사|"
               r"구매)|"
               r"(?:익명|가명|닉네임)[^.\n]{0,15}(?:실제|진짜)\s*(?:신원|정체|이름)[^.\n]{0,10}(?:찾|알아내|밝혀)|"
               r"(?:불법적으로|불법으로|무단으로|동의\s*없이|몰래)\s*[^.\n]{0,15}(?:접근|수집|조회|열람|추적)하", _I),
    re.compile(r"(?:백신이?\s*자폐|5G가?\s*코로나|지구(?:는|가)?\s*평평|홀로코스트(?:는|가)?\s*(?:없었|조작)|"
               r"달\s*착륙(?:은|이)?\s*"
               r"조작)[^.\n]{0,30}(?:글|기사|트윗|게시물|증거|주장|스레드)[^.\n]{0,10}(?:작성|써|만들|생성)"),
    re.compile(r"(?:사람들?|노인|고객|투자자|피해자)(?:을|를|들을)?\s*(?:속이|등치|사기\s*치)(?:려고|려면|기\s*위해|"
               r"기\s*위한|는\s*방법|"
               r"는\s*법)|(?:단속|수사|경찰|출입국|세관|국세청)[^.\n]{0,10}(?:피하|피해|따돌리|"
               r"빠져나가)[^.\n]{0,10}(?:방법|법|요령|"
               r"전략|알려)"),
    re.compile(r"(?:노인|여자|남자|이민자|외국인|장애인|유대인|무슬림|동성애자|난민)(?:들)?(?:은|는|이|가)?\s*(?:모두|"
               r"전부|다)\s*"
               r"(?:죽어야|죽여야|없어져야|사라져야|제거되어야)"),
)

# Defensive or educational framing: a question about preventing or recognising a harm is not a
# request for it. The classifier still scores these texts.
_DEFENSIVE = re.compile(
    r"\b(?:prevent\w*|protect\w*|defend\w*|detect\w*|recogni[sz]\w*|identify|spot|report\w*|combat\w*|"
    r"counter\w*|fight(?:ing)? against|debunk\w*|condemn\w*|"
    r"avoid\w*(?! (?:detection|capture|arrest|being (?:caught|detected)|getting caught|the police|authorities))|"
    r"awareness|history of|statistics|dangers?|"
    r"risks? of|"
    r"signs of|symptoms|treat\w*|recover\w*|mitigat\w*|warn\w*|help (?:someone|a friend|victims)|"
    r"regulat\w*|ban(?:ned)?|illegal in|why is it)\b|예방|방지|막는|막으|막을|차단|탐지|대처|대응|보호|신고|구별|"
    r"알아차|위험성|역사|통계|증상|치료|상담|극복|피해자|경각심|주의\s*사항|조심|규제|처벌|근절|방안|대책|"
    r"왜\s*(?:나쁜|위험|불법)",
    _I,
)


# Talking about an attack is not making one: "why is 'ignore previous instructions' dangerous?",
# "이전 지시를 무시하라는 문구를 탐지하는 방법". Such texts are left to the classifier.
_ABOUT_ATTACKS = re.compile(
    r"\bwhy (?:is|are|would|do|does|can)\b[^.\n]{0,60}\b(?:dangerous|risky|harmful|an attack|a risk|a threat|"
    r"malicious|effective|succeed|work)\b|"
    r"\bhow (?:do|can|could|should|to|would) (?:i |we |you |models |llms |systems |developers )?(?:detect|prevent|"
    r"defend|block|classify|recogni[sz]e|mitigate|filter|flag|guard against)\b|"
    r"\b(?:phrases?|prompts?|requests?|strings?|sentences?|messages?|inputs?|attempts?) (?:like|such as|"
    r"containing|saying) [\"'“‘]|"
    r"\b(?:security (?:training|awareness|course|class|review|lecture)|red[- ]team\w* (?:dataset|exercise|report)|"
    r"test cases?|example of (?:a |an )?(?:prompt injection|jailbreak))\b|"
    r"\bwhat (?:is|are) (?:a |an )?(?:prompt injections?|jailbreaks?|jailbreaking|dan prompts?)\b|"
    r"\b(?:is|are) (?:a |an )?(?:classic|common|typical|known|famous) (?:prompt )?(?:injection|jailbreak|attack)|"
    r"라는\s*(?:문구|문장|말|표현|요청|프롬프트|지시|명령|공격|메시지|질문)|"
    r"(?:문구|문장|표현|요청|프롬프트|공격|메시지|시도)(?:을|를|이|가|의|은|는)?\s*(?:탐지|분류|방어|분석|차단|구별|"
    r"식별|"
    r"필터링|검출|막는|막을|대응하|처리하)|"
    r"(?:왜|이유)[^.\n]{0,15}(?:위험|공격인|문제가?\s*되)|위험한\s*이유|(?:문구|문장|요청|공격|"
    r"프롬프트)[^.\n]{0,5}위험성|(?:되면|하면)\s*안\s*되는\s*이유|"
    r"보안\s*(?:교육|수업|관점|자료|훈련)|탐지\s*규칙|방어\s*예시|테스트\s*(?:케이스|데이터|셋)|레드\s*팀|"
    r"(?:프롬프트\s*인젝션|탈옥|제일브레이크)(?:이|가|은|는|이란|란)?\s*(?:무엇|뭐|뭔가|어떻게|어떤)",
    _I,
)


def discusses_attacks(text: str) -> bool:
    """The text asks about attacks (why they are dangerous, how to detect them) rather than making one."""
    return _ABOUT_ATTACKS.search(text) is not None


def harmful_hit(text: str) -> str | None:
    """A request for harm (see ``HARMFUL_PATTERNS``), unless the text is framed defensively."""
    hit = first_hit(HARMFUL_PATTERNS, text)
    return None if hit is None or _DEFENSIVE.search(text) else hit


def first_hit(patterns: tuple[re.Pattern[str], ...], text: str) -> str | None:
    """The matched snippet of the first pattern that hits, or None."""
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            return m.group(0)[:80]
    return None
