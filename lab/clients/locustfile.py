"""Locust: users asking fresh questions of a running ragd (``ragd serve --demo``), each a new question
so no answer comes from the cache. Every response is classified: answered (200) within the request's
deadline, refused (429 with Retry-After) and how fast, or anything else (a 504 is the failure this
scenario exists to catch). ``--json-out`` writes the tallies when the run ends.

Run (locust in its own virtualenv):
``locust -f lab/clients/locustfile.py --headless -u 10 -r 10 -t 60s --host http://127.0.0.1:8080``
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections import Counter
from typing import Any

from locust import HttpUser, between, events, task

DEADLINE_S = float(os.environ.get("RAGD_CLIENTS_DEADLINE_S", "120"))  # the server's RAGD_REQUEST_TIMEOUT_S
FAST_REFUSAL_S = 0.1
TOPICS = ["hybrid retrieval", "reciprocal rank fusion", "the cross-encoder", "the semantic cache",
          "the corpus epoch", "guardrails", "HNSW", "streaming", "monitoring", "하이브리드 검색", "의미 캐시"]
ASPECTS = ["What is", "Why does ragd use", "How is", "Explain briefly", "Give one fact about",
           "What problem is solved by", "When should I tune", "What limits"]
_counter = itertools.count()
_lock = threading.Lock()
TALLY: Counter[str] = Counter()
WORST: dict[str, float] = {"answered_s": 0.0, "refused_s": 0.0}
SECONDS: dict[str, list[float]] = {"answered_s": [], "refused_s": []}
LOAD: dict[str, list[float]] = {"start": list(os.getloadavg())}


def fresh_question() -> str:
    n = next(_counter)
    topic, aspect = TOPICS[n % len(TOPICS)], ASPECTS[(n // len(TOPICS)) % len(ASPECTS)]
    return f"{aspect} {topic}? (question {n})"


def record(status: int, seconds: float, retry_after: str | None) -> str:
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
    return kind


class Asker(HttpUser):
    wait_time = between(0.5, 1.5)

    @task
    def ask(self) -> None:
        body = {"model": "ragd", "max_tokens": 64, "messages": [{"role": "user", "content": fresh_question()}]}
        started = time.perf_counter()
        with self.client.post("/v1/chat/completions", json=body, name="/v1/chat/completions",
                              timeout=DEADLINE_S + 30, catch_response=True) as response:
            kind = record(response.status_code, time.perf_counter() - started, response.headers.get("retry-after"))
            if kind in ("answered_in_time", "refused_fast"):
                response.success()  # a fast, honest refusal is the designed answer to overload
            else:
                response.failure(kind)


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--json-out", default="", help="write the tallies to this JSON file at the end")


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
    result = {"tally": dict(TALLY), "worst_seconds": WORST, "deadline_s": DEADLINE_S,
              "fast_refusal_s": FAST_REFUSAL_S, "users": environment.parsed_options.num_users,
              "run_time": environment.parsed_options.run_time,
              "seconds": {key: percentiles(values) for key, values in SECONDS.items()},
              "load_average_1_5_15": LOAD}
    print(json.dumps(result))
    if environment.parsed_options.json_out:
        with open(environment.parsed_options.json_out, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
