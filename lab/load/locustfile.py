"""Locust scenarios against a running ragd: a weighted mix that looks like a chat product, in English
and Korean, over the demo corpus (``ragd serve --demo``, what ``make run`` serves).

Scenarios (each a tagged task; ``--tags NAME`` runs only some of them):

- ``exact``: the questions every user asks, word for word (exact cache hits after the first);
- ``paraphrase``: the same questions in other words (semantic cache hits, when the cache finds them);
- ``fresh``: a question nobody asked before (misses: input rails, retrieval, generation);
- ``stream``: one of the above with ``stream: true``, read to ``data: [DONE]``; the time to the first
  content chunk is reported as its own row (``stream: first content``);
- ``followup``: a two-turn conversation (the question, the answer, then a follow-up that ragd rewrites
  into a standalone question);
- ``ingest``: a document added or changed in its own collection (``--ingest-collection``) while the
  others ask, so ingestion competes with queries without changing the collection they ask.

Every response is classified: answered (200) within the request's deadline, refused (429 with
Retry-After) and how fast, or anything else; the ``x-ragd-cache`` outcome is counted per scenario.
``--json-out`` writes the tallies when the run ends. ``lab.load.run`` (``make load``) drives it;
``lab.clients.locust_check`` runs it with ``--tags fresh`` for the overload check.

Run by hand (locust in its own virtualenv, ``.clients/locust``):
``locust -f lab/load/locustfile.py --headless -u 20 -r 5 -t 60s --host http://127.0.0.1:8000``
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from locust import HttpUser, between, events, tag, task

DEADLINE_S = float(os.environ.get("RAGD_CLIENTS_DEADLINE_S", "120"))  # the server's RAGD_REQUEST_TIMEOUT_S
FAST_REFUSAL_S = 0.1
MAX_TOKENS = 64

# relative weights of the scenarios: mostly repeated and streamed questions, a steady share of new ones,
# some conversations, and an occasional document change
WEIGHTS = {"exact": 30, "paraphrase": 12, "fresh": 15, "stream": 25, "followup": 12, "ingest": 2}

# (topic as asked in English, in Korean): all covered by the demo corpus
TOPICS_EN = ["reciprocal rank fusion", "hybrid retrieval", "the cross-encoder reranker", "the semantic cache",
             "the corpus epoch", "guardrails", "HNSW index tuning", "streaming answers", "monitoring"]
TOPICS_KO = ["하이브리드 검색", "한국어 형태소 분석", "교차 인코더 재순위화", "의미 기반 캐시", "가드레일",
             "vLLM 서빙", "모니터링", "테넌트 격리", "문서 분할"]
ASKED_EN = "What is {}?"
ASKED_KO = "{}에 대해 설명해 주세요."
PARAPHRASES_EN = ["Can you explain {}?", "Please explain {}.", "Tell me about {}.", "Briefly describe {}.",
                  "I'd like to know what {} is.", "Help me understand {}.", "Could you describe {}?"]
PARAPHRASES_KO = ["{}에 대해 알려 주세요.", "{}에 대해 간단히 설명해 줄래요?", "{} 설명 부탁합니다.",
                  "{}의 개념을 알려 주세요.", "{}에 대해 설명해 줄 수 있나요?"]
FOLLOWUPS_EN = ["How is it tuned?", "Why does ragd use it?", "What does it cost?", "What can go wrong with it?"]
FOLLOWUPS_KO = ["그건 어떻게 설정하나요?", "ragd는 왜 그것을 쓰나요?", "그 방식의 단점은 뭔가요?"]
# fresh questions: an aspect and a topic nobody combined before, numbered so none repeats
TOPICS = [*TOPICS_EN, *TOPICS_KO[:3]]
ASPECTS = ["Why does ragd use", "How is", "Explain briefly", "Give one fact about", "What problem is solved by",
           "When should I tune", "What limits"]

_counter = itertools.count()
_lock = threading.Lock()
TALLY: Counter[str] = Counter()
WORST: dict[str, float] = {"answered_s": 0.0, "refused_s": 0.0}
SECONDS: dict[str, list[float]] = {"answered_s": [], "refused_s": [], "first_content_s": []}
SCENARIOS: dict[str, Counter[str]] = defaultdict(Counter)
LOAD: dict[str, list[float]] = {"start": list(os.getloadavg())}


def fresh_question() -> str:
    """A question no earlier request of this run asked (English, with some Korean topics)."""
    n = next(_counter)
    topic, aspect = TOPICS[n % len(TOPICS)], ASPECTS[(n // len(TOPICS)) % len(ASPECTS)]
    return f"{aspect} {topic}? (question {n})"


def asked_question(rng: random.Random) -> str:
    """One of the questions everyone asks, word for word, in English or Korean."""
    if rng.random() < 0.5:
        return ASKED_EN.format(rng.choice(TOPICS_EN))
    return ASKED_KO.format(rng.choice(TOPICS_KO))


def paraphrase(rng: random.Random) -> str:
    """One of the asked questions in other words."""
    if rng.random() < 0.5:
        return rng.choice(PARAPHRASES_EN).format(rng.choice(TOPICS_EN))
    return rng.choice(PARAPHRASES_KO).format(rng.choice(TOPICS_KO))


def conversation(rng: random.Random) -> tuple[str, str]:
    """(first question, follow-up) in one language."""
    if rng.random() < 0.5:
        return ASKED_EN.format(rng.choice(TOPICS_EN)), rng.choice(FOLLOWUPS_EN)
    return ASKED_KO.format(rng.choice(TOPICS_KO)), rng.choice(FOLLOWUPS_KO)


def record(status: int, seconds: float, retry_after: str | None, *, scenario: str = "",
           cache: str | None = None) -> str:
    """Classify one response, count it (and its cache outcome under ``scenario``); the class."""
    if status == 200:
        kind = "answered_in_time" if seconds <= DEADLINE_S else "answered_late"
        key = "answered_s"
    elif status == 429:
        kind = "refused_fast" if seconds <= FAST_REFUSAL_S and retry_after else "refused_slow"
        key = "refused_s"
    else:
        kind, key = f"status_{status}", ""
    with _lock:
        TALLY[kind] += 1
        if key:
            WORST[key] = max(WORST[key], seconds)
            SECONDS[key].append(seconds)
        if scenario:
            SCENARIOS[scenario]["requests"] += 1
            SCENARIOS[scenario][f"status_{status}"] += 1
            if cache:
                SCENARIOS[scenario][f"cache_{cache}"] += 1
    return kind


def chat_body(messages: list[dict[str, str]], *, model: str, stream: bool = False) -> dict[str, Any]:
    return {"model": model, "max_tokens": MAX_TOKENS, "messages": messages, "stream": stream}


class ChatUser(HttpUser):
    """A user of a chat product built on ragd (every scenario, weighted by :data:`WEIGHTS`)."""

    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        key = getattr(options, "api_key", "") if options else ""
        if key:
            self.client.headers["Authorization"] = f"Bearer {key}"
        collection = getattr(options, "collection", "default") if options else "default"
        self.model = "ragd" if collection == "default" else f"ragd:{collection}"
        self.ingest_collection = getattr(options, "ingest_collection", "load-ingest") if options else "load-ingest"
        self.rng = random.Random()
        self.ingest_ready = False

    def _chat(self, scenario: str, messages: list[dict[str, str]]) -> dict[str, Any] | None:
        started = time.perf_counter()
        with self.client.post("/v1/chat/completions", json=chat_body(messages, model=self.model),
                              name=f"chat: {scenario}", timeout=DEADLINE_S + 30, catch_response=True) as response:
            kind = record(response.status_code, time.perf_counter() - started, response.headers.get("retry-after"),
                          scenario=scenario, cache=response.headers.get("x-ragd-cache"))
            if kind in ("answered_in_time", "refused_fast"):
                response.success()  # a fast, honest refusal is the designed answer to overload
            else:
                response.failure(kind)
            if response.status_code == 200:
                payload: dict[str, Any] = response.json()
                return payload
        return None

    @tag("exact")
    @task(WEIGHTS["exact"])
    def exact(self) -> None:
        self._chat("exact", [{"role": "user", "content": asked_question(self.rng)}])

    @tag("paraphrase")
    @task(WEIGHTS["paraphrase"])
    def paraphrase(self) -> None:
        self._chat("paraphrase", [{"role": "user", "content": paraphrase(self.rng)}])

    @tag("fresh")
    @task(WEIGHTS["fresh"])
    def fresh(self) -> None:
        self._chat("fresh", [{"role": "user", "content": fresh_question()}])

    @tag("followup")
    @task(WEIGHTS["followup"])
    def followup(self) -> None:
        first, then = conversation(self.rng)
        answer = self._chat("turn 1", [{"role": "user", "content": first}])
        if answer is None:
            return
        reply = answer["choices"][0]["message"]["content"] or ""
        self._chat("followup", [{"role": "user", "content": first}, {"role": "assistant", "content": reply},
                                {"role": "user", "content": then}])

    @tag("stream")
    @task(WEIGHTS["stream"])
    def stream(self) -> None:
        pick = self.rng.random()
        question = asked_question(self.rng) if pick < 0.6 else paraphrase(self.rng) if pick < 0.8 else fresh_question()
        body = chat_body([{"role": "user", "content": question}], model=self.model, stream=True)
        started = time.perf_counter()
        first_content: float | None = None
        done = False
        with self.client.post("/v1/chat/completions", json=body, name="chat: stream", stream=True,
                              timeout=DEADLINE_S + 30, catch_response=True) as response:
            if response.status_code == 200:
                for line in response.iter_lines(decode_unicode=True):
                    if not line or not line.startswith("data: "):
                        continue
                    if line == "data: [DONE]":
                        done = True
                        break
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        break
                    delta = (chunk.get("choices") or [{}])[0].get("delta", {})
                    if first_content is None and delta.get("content"):
                        first_content = time.perf_counter() - started
            seconds = time.perf_counter() - started
            kind = record(response.status_code, seconds, response.headers.get("retry-after"), scenario="stream",
                          cache=response.headers.get("x-ragd-cache"))
            if response.status_code == 200 and not done:
                response.failure("stream ended without data: [DONE]")
            elif kind in ("answered_in_time", "refused_fast"):
                response.success()
            else:
                response.failure(kind)
        if first_content is not None:
            with _lock:
                SECONDS["first_content_s"].append(first_content)
            self.environment.events.request.fire(request_type="SSE", name="stream: first content",
                                                 response_time=first_content * 1000, response_length=0,
                                                 exception=None, context={})

    @tag("ingest")
    @task(WEIGHTS["ingest"])
    def ingest(self) -> None:
        base = f"/v1/collections/{self.ingest_collection}"
        if not self.ingest_ready:
            with self.client.post("/v1/collections", json={"name": self.ingest_collection},
                                  name="collections: create", catch_response=True) as response:
                if response.status_code in (200, 201, 409):  # 409: another user made it first
                    response.success()
                    self.ingest_ready = True
                else:
                    response.failure(f"status_{response.status_code}")
                    return
        n = next(_counter)
        topic = self.rng.choice(TOPICS_EN)
        document = {"id": f"load-{n % 50}", "title": f"Load note {n % 50}",
                    "text": f"Note {n} on {topic}: ragd answers questions about {topic} from its sources, "
                            f"and this note changes with every write of the load test ({time.time():.3f})."}
        started = time.perf_counter()
        with self.client.post(f"{base}/documents", json={"documents": [document]}, name="ingest: one document",
                              timeout=DEADLINE_S + 30, catch_response=True) as response:
            kind = record(response.status_code, time.perf_counter() - started, response.headers.get("retry-after"),
                          scenario="ingest")
            if kind in ("answered_in_time", "refused_fast"):
                response.success()
            else:
                response.failure(kind)


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--json-out", default="", help="write the tallies to this JSON file at the end")
    parser.add_argument("--api-key", default=os.environ.get("RAGD_LOAD_API_KEY", ""),
                        help="bearer key for a keyed gateway (default: $RAGD_LOAD_API_KEY; none in open mode)")
    parser.add_argument("--collection", default="default", help="the collection the questions ask")
    parser.add_argument("--ingest-collection", default="load-ingest",
                        help="the collection the ingest scenario writes to (created when missing)")


def _sample_load() -> None:
    while True:
        time.sleep(5)
        LOAD.setdefault("one_minute_every_5s", []).append(os.getloadavg()[0])


threading.Thread(target=_sample_load, daemon=True).start()


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 / p90 / p95 / p99 / max of ``values`` (nearest rank), seconds."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))], 4)

    return {"p50": rank(0.5), "p90": rank(0.9), "p95": rank(0.95), "p99": rank(0.99), "max": round(ordered[-1], 4)}


@events.quitting.add_listener
def _report(environment: Any, **_: Any) -> None:
    LOAD["end"] = list(os.getloadavg())
    options = environment.parsed_options
    result = {"tally": dict(TALLY), "worst_seconds": WORST, "deadline_s": DEADLINE_S,
              "fast_refusal_s": FAST_REFUSAL_S, "users": options.num_users, "run_time": options.run_time,
              "tags": options.tags, "weights": WEIGHTS,
              "scenarios": {name: dict(counts) for name, counts in sorted(SCENARIOS.items())},
              "seconds": {key: percentiles(values) for key, values in SECONDS.items()},
              "load_average_1_5_15": LOAD}
    print(json.dumps(result, ensure_ascii=False))
    if options.json_out:
        with open(options.json_out, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2, ensure_ascii=False)
