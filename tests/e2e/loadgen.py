"""A bounded load from a second process: chat requests in a loop for a fixed time, one JSON line per
request (time, status, headers that matter, error code, duration). Loopback only."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import TextIO

import httpx

QUESTIONS = ["When was the Aurora Lighthouse built?", "How is Copperleaf tea dried?",
             "Which river does the Quillon Bridge cross?", "푸른솔 도서관은 언제 문을 열었나요?",
             "달빛 호수 축제는 언제 열리나요?"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stop-file", default=None, help="stop early once this file exists")
    args = parser.parse_args()
    stop_at = time.monotonic() + args.seconds
    lock = threading.Lock()
    counter = itertools.count()
    with open(args.out, "w", encoding="utf-8") as out:
        workers = [threading.Thread(target=_worker, args=(args, stop_at, out, lock, counter))
                   for _ in range(args.workers)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()


def _worker(args: argparse.Namespace, stop_at: float, out: TextIO, lock: threading.Lock,
            counter: Iterator[int]) -> None:
    with httpx.Client(timeout=args.timeout) as client:
        while time.monotonic() < stop_at and not (args.stop_file and os.path.exists(args.stop_file)):
            n = next(counter)
            body = {"model": "ragd", "max_tokens": 2, "messages": [{"role": "user", "content": QUESTIONS[n % 5]}]}
            headers = {"cache-control": "no-cache"} if n % 2 else {}
            started = time.monotonic()
            record: dict[str, object] = {"t": time.time(), "n": n}
            try:
                response = client.post(args.url + "/v1/chat/completions", json=body, headers=headers)
                record.update(status=response.status_code, cache=response.headers.get("x-ragd-cache"),
                              degraded=response.headers.get("x-ragd-degraded", ""))
                if response.status_code >= 400:
                    record["error"] = response.json().get("error", {})
            except httpx.HTTPError as exc:
                record.update(status=0, transport_error=type(exc).__name__)
            record["seconds"] = round(time.monotonic() - started, 3)
            with lock:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
            time.sleep(0.1)


if __name__ == "__main__":
    main()
