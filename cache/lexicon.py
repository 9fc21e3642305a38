"""Word lists of the precision guards (English and Korean). Kept as plain strings so they read as lists."""

from __future__ import annotations

__all__ = [
    "ANTONYMS",
    "ASK_NOUNS",
    "EN_NEGATION",
    "EN_NUMBERS",
    "EN_STOPWORDS",
    "KO_COUNTERS",
    "KO_FUSED_COUNTERS",
    "KO_LIGHT_PREDICATES",
    "KO_NEGATION",
    "KO_NUMBERS",
    "KO_PARTICLES",
    "KO_ROLES",
    "KO_STOPWORDS",
    "TEMPORAL",
]


def _words(text: str) -> list[str]:
    return text.split()


def _split_on(separator: str, text: str) -> list[str]:
    return text.split(separator)


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=") for item in _words(text))


EN_NUMBERS = _pairs(
    "zero=0 one=1 two=2 three=3 four=4 five=5 six=6 seven=7 eight=8 nine=9 ten=10 eleven=11 twelve=12 "
    "fifteen=15 twenty=20 thirty=30 forty=40 fifty=50 hundred=100 thousand=1000 million=1e6 billion=1e9 "
    "first=1 third=3 fourth=4 fifth=5 once=1 twice=2 half=0.5 dozen=12 single=1 double=2 triple=3"
)
# Korean numerals count only before a counter ("두 개", "세 명", "첫째"); alone they are common syllables.
KO_NUMBERS = _pairs(
    "하나=1 한=1 첫=1 둘=2 두=2 셋=3 세=3 넷=4 네=4 다섯=5 여섯=6 일곱=7 여덟=8 아홉=9 열=10 스무=20 "
    "백=100 천=1000 만=1e4 억=1e8 절반=0.5"
)
KO_COUNTERS = tuple(_words("개 명 번 살 시 달 가지 시간 권 대 째 년 주 차 배 장 일 분기"))
# Counters that may fuse with a one-syllable numeral into one word ("한개", "세명", "첫째"); others
# would read "열차" (train) as ten and "세금" (tax) as three.
KO_FUSED_COUNTERS = tuple(_words("개 명 가지 번째 째 살"))
# Slots of time that exclude each other: dates, weekdays, seasons, relative days, parts of the day and the
# meals that name them ("점심"/"저녁", "lunch"/"dinner": the same question about another slot).
TEMPORAL = _pairs(
    "january=m1 february=m2 march=m3 april=m4 may=m5 june=m6 july=m7 august=m8 september=m9 october=m10 "
    "november=m11 december=m12 monday=d1 tuesday=d2 wednesday=d3 thursday=d4 friday=d5 saturday=d6 sunday=d7 "
    "today=t0 tonight=t0 yesterday=t-1 tomorrow=t+1 weekend=we weekday=wd weekdays=wd weekends=we "
    "morning=am afternoon=pm evening=pm night=night noon=noon midnight=night "
    "spring=s1 summer=s2 autumn=s3 winter=s4 봄=s1 여름=s2 가을=s3 겨울=s4 "
    "breakfast=am brunch=am lunch=noon dinner=pm supper=pm "
    "오늘=t0 어제=t-1 내일=t+1 모레=t+2 작년=y-1 지난해=y-1 올해=y0 금년=y0 내년=y+1 주말=we 평일=wd "
    "오전=am 오후=pm 아침=am 점심=noon 정오=noon 저녁=pm 새벽=dawn 자정=night 심야=night "
    "월요일=d1 화요일=d2 수요일=d3 목요일=d4 금요일=d5 토요일=d6 일요일=d7"
)
EN_NEGATION = frozenset(
    _words(
        "not no never none nobody nothing neither nor without cannot can't won't don't doesn't didn't isn't aren't "
        "wasn't weren't shouldn't couldn't wouldn't mustn't haven't hasn't hadn't except excluding unable fail fails "
        "failed lack lacks non"
    )
)
# Substrings of the space-padded question; " 안 " needs its spaces ("동안" is "during", not "not").
KO_NEGATION = tuple(_split_on(
    "|", "않|없|못 |못받|못하|못했|못해|못한|지 못| 안 |아니|아닌|말고|제외|불가|금지|안 되|안되|빼고|불허"))
ANTONYMS = [
    tuple(word.replace("_", " ") for word in pair.split("/"))
    for pair in _words(
        "before/after more/less more/fewer maximum/minimum max/min increase/decrease highest/lowest "
        "largest/smallest biggest/smallest earliest/latest above/below over/under first/last oldest/newest "
        "oldest/youngest longest/shortest best/worst upload/download import/export input/output buy/sell "
        "enable/disable start/stop open/close add/remove allowed/forbidden legal/illegal win/lose rise/fall "
        "inbound/outbound north/south east/west hot/cold within/outside inside/outside advantages/disadvantages "
        "encrypt/decrypt inflation/deflation check-in/checkout include/exclude included/excluded "
        "turn_on/turn_off switch_on/switch_off log_in/log_out sign_in/sign_out indoor/outdoor born/died "
        "birth/death allowed/banned permitted/banned offense/defense offensive/defensive "
        "이전/이후 전에/후에 최대/최소 최고/최저 증가/감소 이상/이하 초과/미만 처음/마지막 "
        "높은/낮은 많은/적은 비싼/싼 상승/하락 구매/판매 입력/출력 업로드/다운로드 시작/종료 "
        "활성화/비활성화 추가/삭제 합법/불법 "
        "승리/패배 북쪽/남쪽 동쪽/서쪽 입국/출국 수입/수출 장점/단점 내/외 암호화/복호화 체크인/체크아웃 "
        "켜/끄 켜기/끄기 로그인/로그아웃 하원/상원 입사/퇴사 찬성/반대 안쪽/바깥쪽 넓은/좁은"
    )
]
# Korean case particles grouped by role; a noun that changes role between two questions swapped places.
KO_ROLES = [
    ("subject", ("께서", "이", "가", "은", "는")),
    ("object", ("을", "를")),
    ("dative", ("에게서", "한테서", "에게", "한테", "께")),
    ("source", ("에서부터", "에서", "부터")),
    ("goal", ("까지", "으로", "로")),
    ("comparison", ("보다",)),
]
KO_PARTICLES = tuple(
    sorted(
        _words(
            "께서 이 가 은 는 을 를 에게서 한테서 에게 한테 께 에서부터 에서 부터 까지 "
            "으로 로 보다 의 에 에는 도 만 와 과 하고 랑 이랑 에도 이나 나 이란 란"
        ),
        key=len,
        reverse=True,
    )
)
EN_STOPWORDS = frozenset(
    _words(
        "a an the of to in on at for from by with about into onto as and or but if then so than that this these those "
        "is are was were be been being am do does did done doing have has had having can could will would shall should "
        "may might must i me my mine you your yours we our us they their them it its he his him she her what which "
        "who whom whose where when why how there here any some all each every much many way ways get got make makes "
        "tell explain please s possible able procedure process steps step kind type "
        "hey hi hello quick question wondering wonder curious remind happen exactly ok okay so just actually anyone "
        "person"
    )
)
KO_STOPWORDS = frozenset(
    _words(
        "무엇 무엇인가요 무엇인가 뭔가요 뭐예요 뭐 어떻게 어떤 어디 어디인가요 어디서 어디에서 "
        "언제 언제인가요 누구 누구인가요 누가 얼마 얼마인가요 얼마나 얼마예요 몇 왜 방법 방법은 "
        "방법은요 방법이 방법을 알려주세요 알려 주세요 궁금합니다 "
        "궁금해요 하나요 되나요 인가요 있나요 있는 있을 수 이 그 저 것 좀 해야 하려면 하는 하면 할 돼요 되는 "
        "가요 나요 요 은요 는요 절차 절차는 절차가 "
        "혹시 저기요 궁금해서 그러는데 아세요 아시나요 알려줄 알려줄래요 줄래요 줄 있어요 정확히 좀요 "
        "사람 사람은 사람이 인물 인물은 인물이"
    )
)
# Light predicates: forms of 하다 (do), 되다 (become), 이다 (be), 있다 (exist) and the bound noun 것 that
# close a Korean question. They carry the sentence's grammar, not its content: "처음 공연을 언제 했나요" and
# "처음 구상된 게 언제인가요" keep one frame and exchange one slot (공연 / 구상).
KO_LIGHT_PREDICATES = frozenset(
    _words(
        "했나요 했어요 했습니까 했는지 했죠 했니 했던 했을까요 했을 합니까 합니다 해요 하죠 한가요 할까요 하니 "
        "하는지 하는가요 하던 되나요 됐나요 됐어요 됐는지 됐죠 되었나요 되었어요 되었습니까 되었는지 됩니까 돼요 "
        "될까요 되는지 되는가요 되던 인가요 인지 인가 인지요 이에요 예요 입니까 이었나요 였나요 이었어요 였어요 "
        "였는지 일까요 이죠 이었죠 있었나요 있어요 있었어요 있습니까 있는지 있을까요 있었는지 것 것은 것이 게 거 건 "
        "건가요 거예요 걸까요 거죠"
    )
)
# Nouns that restate a question word in a short question without one ("캐나다 태평양 철도 건설 시기?" asks
# "언제", "rhine gorge castle count?" asks "how many"): what they ask, not a content slot.
ASK_NOUNS = _pairs(
    "시기=time 날짜=time 연도=time 년도=time 시점=time 일자=time date=time "
    "개수=count 숫자=count 인원=count count=count "
    "장소=place 위치=place location=place place=place "
    "이유=reason 원인=reason reason=reason "
    "가격=amount 비용=amount 금액=amount price=amount cost=amount "
    "순위=rank 등수=rank rank=rank ranking=rank 점수=score score=score"
)
