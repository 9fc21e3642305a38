"""One encoder run per question and graph: the cache's and the retriever's e5 share a question's vector."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from embeddings.e5_onnx import E5OnnxEmbedder, E5OnnxSettings, _QueryFlights

KEY = ("graph.onnx", (0, 42, 2))


def _counting(gate: threading.Event | None = None) -> tuple[Callable[[], np.ndarray], list[int]]:
    calls: list[int] = []

    def compute() -> np.ndarray:
        calls.append(1)
        if gate is not None:
            gate.wait(5)
        return np.ones((1, 4), dtype=np.float32)

    return compute, calls


def test_a_second_caller_gets_the_first_callers_vector_without_a_second_run() -> None:
    flights = _QueryFlights()
    gate = threading.Event()
    compute, calls = _counting(gate)
    first, second = flights.run(KEY, 1, compute), flights.run(KEY, 2, compute)
    results: list[np.ndarray] = []
    owner = threading.Thread(target=lambda: results.append(first()))
    owner.start()
    waiter = threading.Thread(target=lambda: results.append(second()))
    waiter.start()
    gate.set()
    owner.join(5)
    waiter.join(5)
    assert len(calls) == 1 and len(results) == 2
    assert all(np.array_equal(r, np.ones((1, 4))) for r in results)
    results[0][0, 0] = 9.0  # each caller owns its copy
    assert flights.run(KEY, 3, compute)()[0, 0] == 1.0 and len(calls) == 1
    flights.run(KEY, 1, compute)()  # the owner asking again runs the encoder again (timing loops stay honest)
    assert len(calls) == 2


def test_a_waiter_computes_itself_when_the_owner_never_runs_or_fails() -> None:
    flights = _QueryFlights(wait_s=0.05)
    compute, calls = _counting()
    flights.run(KEY, 1, compute)  # prepared, never run
    assert np.array_equal(flights.run(KEY, 2, compute)(), np.ones((1, 4)))
    assert len(calls) == 1

    def broken() -> np.ndarray:
        raise RuntimeError("encoder failed")

    other = ("graph.onnx", (7,))
    with pytest.raises(RuntimeError):
        flights.run(other, 1, broken)()
    assert np.array_equal(flights.run(other, 2, compute)(), np.ones((1, 4)))  # a failed flight is run again


def test_the_cache_and_retriever_graphs_share_a_questions_vector() -> None:
    settings = E5OnnxSettings()
    cache_side = E5OnnxEmbedder(models_dir=settings.models_dir, threads=2, max_length=512)
    retriever_side = E5OnnxEmbedder(models_dir=settings.models_dir, threads=1, max_length=256)
    question = "캐나다까지 배송은 얼마나 걸리나요? shipping time to Canada"
    a = cache_side.embed_queries([question])
    b = retriever_side.embed_queries([question])
    assert a.shape == (1, 384) and np.array_equal(a, b)
    batch = retriever_side.embed_queries([question, "another question"])  # batches run as before
    assert np.allclose(batch[0], a[0], atol=1e-5)
