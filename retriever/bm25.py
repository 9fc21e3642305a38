"""A BM25 index over analyzed chunk terms, made of immutable segments, persisted on disk under a corpus
fingerprint.

A segment holds raw postings (term -> rows and term frequencies) and row lengths; nothing in it depends on
the rest of the corpus. The corpus statistics BM25 needs (number of chunks, document frequency of a query
term, average length) are summed over the segments at query time, with deleted rows left out, so a search
over a large base segment plus small delta segments scores every chunk exactly as one index built from
scratch over the same chunks would. A corpus change therefore costs only the changed chunks: their rows are
marked deleted where they were and the new chunks become a new delta segment. When the deltas grow past a
share of the corpus, :meth:`BM25Index.merge` folds every segment into one from the stored postings (no
re-analysis); the merged index scores the same.

Scores are Lucene's BM25 (idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf part = tf / (tf + k1 * (1 - b + b *
len / avg len))), computed as bm25s computes them (float64 per term, summed in float32, a query term counted
once per occurrence), so an index built here ranks like the bm25s index it replaces.

A saved index is a manifest (fingerprint, segment names, deleted rows) beside one folder per segment; a
segment folder is written once and shared by every later manifest, so saving after an incremental change
writes only the new delta. A saved index is reused only when its fingerprint (a hash of every committed
document's id and content hash) matches the corpus exactly, so it can never serve a half-applied or
outdated corpus.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["BM25Index", "Segment"]

_META = "ragd_bm25.json"
_SEGMENT_PREFIX = "seg-"
_EMPTY_TERMS = ("",)  # a chunk without terms still counts as a document of length 1 (as bm25s counts it)


@dataclass(frozen=True, eq=False)
class Segment:
    """Postings of a fixed set of chunks, by term: rows ``rows[indptr[t]:indptr[t + 1]]`` (ascending) hold
    term ``t`` ``tfs[...]`` times; ``lengths[row]`` is a chunk's number of terms."""

    name: str
    chunk_ids: tuple[str, ...]
    vocab: dict[str, int]
    indptr: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int32]
    tfs: npt.NDArray[np.float32]
    lengths: npt.NDArray[np.int32]
    row_of: dict[str, int] = field(repr=False)

    @classmethod
    def build(cls, chunk_ids: Sequence[str], terms: Sequence[Sequence[str]]) -> Segment:
        """Postings of ``chunk_ids`` from their terms (CPU work; call it in a thread on a request path)."""
        vocab: dict[str, int] = {}
        term_ids: list[int] = []
        rows: list[int] = []
        tfs: list[int] = []
        lengths = np.empty(len(chunk_ids), dtype=np.int32)
        for row, chunk_terms in enumerate(terms):
            chunk_terms = chunk_terms or _EMPTY_TERMS
            lengths[row] = len(chunk_terms)
            counts = Counter(chunk_terms)
            term_ids.extend(vocab.setdefault(t, len(vocab)) for t in counts)
            tfs.extend(counts.values())
            rows.extend([row] * len(counts))
        return cls.from_postings(chunk_ids, list(vocab), np.asarray(term_ids, dtype=np.int64),
                                 np.asarray(rows, dtype=np.int32), np.asarray(tfs, dtype=np.float32), lengths)

    @classmethod
    def from_postings(cls, chunk_ids: Sequence[str], terms: Sequence[str], term_ids: npt.NDArray[np.int64],
                      rows: npt.NDArray[np.int32], tfs: npt.NDArray[np.float32],
                      lengths: npt.NDArray[np.int32], *, name: str = "") -> Segment:
        """A segment from postings in any order, rows ascending within each term once sorted stably by term."""
        order = np.argsort(term_ids, kind="stable")
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(term_ids, minlength=len(terms)), out=indptr[1:])
        ids = tuple(chunk_ids)
        return cls(name=name or uuid.uuid4().hex[:16], chunk_ids=ids, vocab={t: i for i, t in enumerate(terms)},
                   indptr=indptr, rows=rows[order], tfs=tfs[order], lengths=lengths,
                   row_of={cid: i for i, cid in enumerate(ids)})

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def postings(self, term: str) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]] | None:
        tid = self.vocab.get(term)
        if tid is None:
            return None
        start, end = self.indptr[tid], self.indptr[tid + 1]
        return self.rows[start:end], self.tfs[start:end]

    def save(self, directory: Path) -> None:
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        np.savez(tmp / "postings.npz", indptr=self.indptr, rows=self.rows, tfs=self.tfs, lengths=self.lengths)
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        (tmp / "ids.json").write_text(json.dumps({"chunk_ids": self.chunk_ids, "terms": terms}, ensure_ascii=False))
        tmp.rename(directory)

    @classmethod
    def load(cls, directory: Path, name: str) -> Segment:
        ids = json.loads((directory / "ids.json").read_text())
        with np.load(directory / "postings.npz") as arrays:
            chunk_ids = tuple(ids["chunk_ids"])
            return cls(name=name, chunk_ids=chunk_ids, vocab={t: i for i, t in enumerate(ids["terms"])},
                       indptr=arrays["indptr"], rows=arrays["rows"], tfs=arrays["tfs"], lengths=arrays["lengths"],
                       row_of={cid: i for i, cid in enumerate(chunk_ids)})


@dataclass(frozen=True)
class _State:
    """The segments of an index and, per segment, its live rows (None: every row is live)."""

    segments: tuple[Segment, ...]
    live: tuple[npt.NDArray[np.bool_] | None, ...]
    count: int  # live chunks
    total_length: int  # terms in live chunks


class BM25Index:
    """Okapi BM25 over chunks; ``search`` returns (chunk_id, score) best first, positive scores only."""

    def __init__(self, chunk_ids: Sequence[str], terms: Sequence[Sequence[str]], *, fingerprint: str = "",
                 k1: float = 1.5, b: float = 0.75) -> None:
        if len(chunk_ids) != len(terms):
            raise ValueError("one term list per chunk id")
        self.fingerprint = fingerprint
        self.k1, self.b = k1, b
        segments = (Segment.build(chunk_ids, terms),) if chunk_ids else ()
        self._state = _state(segments, (None,) * len(segments))
        self._merging = threading.Lock()
        self._norms: dict[tuple[str, float], npt.NDArray[np.float64]] = {}

    @classmethod
    def _of(cls, state: _State, fingerprint: str, k1: float, b: float) -> BM25Index:
        index = cls([], [], fingerprint=fingerprint, k1=k1, b=b)
        index._state = state
        return index

    def __len__(self) -> int:
        return self._state.count

    @property
    def chunk_ids(self) -> list[str]:
        """The live chunks, segment by segment."""
        state = self._state
        return [cid for seg, live in zip(state.segments, state.live, strict=True)
                for row, cid in enumerate(seg.chunk_ids) if live is None or live[row]]

    @property
    def segments(self) -> tuple[Segment, ...]:
        return self._state.segments

    # ------------------------------------------------------------------ searching

    def search(self, query_terms: Sequence[str], k: int,
               allowed: Collection[str] | None = None) -> list[tuple[str, float]]:
        """The best ``k`` chunks; with ``allowed``, only chunks in it are candidates (a metadata filter
        applied before ranking, so a selective filter still gets ``k`` results)."""
        state = self._state  # one consistent snapshot: a merge may swap in another, equal-scoring one
        if state.count == 0 or k <= 0:
            return []
        terms = [t for t in query_terms if t]
        postings = {t: [seg.postings(t) for seg in state.segments] for t in set(terms)}
        idf = {t: self._idf(state, lists) for t, lists in postings.items()}
        avg = state.total_length / state.count
        candidates: list[tuple[float, int, int]] = []
        for s, (seg, live) in enumerate(zip(state.segments, state.live, strict=True)):
            scores = self._segment_scores(seg, s, terms, postings, idf, avg)
            if scores is None:
                continue
            if live is not None:
                scores[~live] = 0.0
            if allowed is not None:
                scores = np.where(_allowed_mask(seg, allowed), scores, np.float32(0.0))
            top = _top(scores, k)
            candidates.extend((float(scores[r]), s, int(r)) for r in top if scores[r] > 0)
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        return [(state.segments[s].chunk_ids[r], score) for score, s, r in candidates[:k]]

    def coverage(self, query_terms: Sequence[str], chunk_ids: Sequence[str]) -> dict[str, float]:
        """Per chunk, the IDF-weighted share of the query's distinct terms it holds (0..1; 0 for a chunk not in
        the index). IDF is over the whole index, so a rare term (a name, a number) weighs more than one the
        topic's every passage shares, and a term no chunk holds weighs most: a passage that was never ingested
        leaves its own terms uncovered."""
        state = self._state
        terms = sorted({t for t in query_terms if t})
        if not terms or state.count == 0:
            return {cid: 0.0 for cid in chunk_ids}
        found = {t: [seg.postings(t) for seg in state.segments] for t in terms}
        weights = {t: _okapi_idf(state.count, _document_frequency(state, lists)) for t, lists in found.items()}
        total = sum(weights.values())
        out: dict[str, float] = {}
        for cid in chunk_ids:
            where = _live_row(state, cid)
            held = 0.0 if where is None else sum(w for t, w in weights.items() if _holds(found[t][where[0]], where[1]))
            out[cid] = held / total
        return out

    def _idf(self, state: _State, lists: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]] | None]) -> float:
        df = _document_frequency(state, lists)
        return 0.0 if df == 0 else float(np.float32(_okapi_idf(state.count, df)))

    def _segment_scores(self, seg: Segment, s: int, terms: Sequence[str],
                        postings: dict[str, list[tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]] | None]],
                        idf: dict[str, float], avg: float) -> npt.NDArray[np.float32] | None:
        scores: npt.NDArray[np.float32] | None = None
        norm: npt.NDArray[np.float64] | None = None
        for term in terms:  # a repeated query term counts once per occurrence
            found = postings[term][s]
            if found is None or idf[term] == 0.0:
                continue
            rows, tfs = found
            if scores is None or norm is None:
                scores = np.zeros(len(seg), dtype=np.float32)
                norm = self._norm(seg, avg)
            part = norm[rows]
            part += tfs
            np.divide(tfs, part, out=part)
            part *= idf[term]
            scores[rows] += part.astype(np.float32)
        return scores

    def _norm(self, seg: Segment, avg: float) -> npt.NDArray[np.float64]:
        """k1 * (1 - b + b * len / avg len) per row of ``seg``, kept while the average length stays."""
        key = (seg.name, avg)
        norm = self._norms.get(key)
        if norm is None:
            norm = self.k1 * ((1 - self.b) + self.b * seg.lengths.astype(np.float64) / avg)
            if len(self._norms) > 2 * max(len(self._state.segments), 1):
                self._norms.clear()
            self._norms[key] = norm
        return norm

    # ------------------------------------------------------------------ changing

    def updated(self, removed: Collection[str], chunk_ids: Sequence[str], terms: Sequence[Sequence[str]], *,
                fingerprint: str) -> BM25Index:
        """A new index without the chunks ``removed`` and with ``chunk_ids`` (their ``terms``) added as one
        delta segment; this index is left as it is. Costs the changed chunks only."""
        if len(chunk_ids) != len(terms):
            raise ValueError("one term list per chunk id")
        state = self._state
        gone = set(removed) | set(chunk_ids)  # a re-added chunk id replaces its old row
        live = list(state.live)
        count, total = state.count, state.total_length
        for s, seg in enumerate(state.segments):
            rows = [r for cid in gone if (r := seg.row_of.get(cid)) is not None]
            mask = live[s]
            rows = [r for r in rows if mask is None or mask[r]]
            if not rows:
                continue
            mask = np.ones(len(seg), dtype=bool) if mask is None else mask.copy()
            mask[rows] = False
            live[s] = mask
            count -= len(rows)
            total -= int(seg.lengths[rows].sum())
        segments = list(state.segments)
        kept = [(s, m) for s, m in zip(segments, live, strict=True) if m is None or m.any()]
        segments, live = [s for s, _ in kept], [m for _, m in kept]
        if chunk_ids:
            delta = Segment.build(chunk_ids, terms)
            segments.append(delta)
            live.append(None)
            count += len(delta)
            total += int(delta.lengths.sum())
        return BM25Index._of(_State(tuple(segments), tuple(live), count, total), fingerprint, self.k1, self.b)

    def needs_merge(self, *, max_segments: int = 8, delta_share: float = 0.1) -> bool:
        """Whether the deltas (or deleted rows) have grown enough to be worth folding into one segment."""
        state = self._state
        if len(state.segments) <= 1 and all(m is None for m in state.live):
            return False
        rows = sum(len(s) for s in state.segments)
        base = len(state.segments[0]) if state.segments else 0
        return len(state.segments) > max_segments or rows - base > delta_share * max(base, 1) or \
            rows - state.count > delta_share * max(rows, 1)

    def merge(self) -> None:
        """Fold every segment into one from the stored postings (no re-analysis) and swap it in; scores stay
        the same. Safe while other threads search; a second concurrent call waits and then does nothing new."""
        with self._merging:
            state = self._state
            if len(state.segments) <= 1 and all(m is None for m in state.live):
                return
            merged = _merge(state)
            self._state = _state((merged,), (None,)) if len(merged) else _state((), ())

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path) -> None:
        """Write the segments not yet on disk, then the manifest atomically (temp file, rename), then remove
        segment folders no manifest names any more."""
        state = self._state
        directory.mkdir(parents=True, exist_ok=True)
        for seg in state.segments:
            path = directory / f"{_SEGMENT_PREFIX}{seg.name}"
            if not path.exists():
                seg.save(path)
        manifest = {"fingerprint": self.fingerprint, "k1": self.k1, "b": self.b,
                    "segments": [seg.name for seg in state.segments],
                    "deleted": [[] if m is None else np.flatnonzero(~m).tolist() for m in state.live]}
        tmp = directory / (_META + ".tmp")
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, directory / _META)
        wanted = {f"{_SEGMENT_PREFIX}{seg.name}" for seg in state.segments} | {_META}
        for path in directory.iterdir():  # replaced segments, and files of another index format
            if path.name not in wanted:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path, fingerprint: str) -> BM25Index | None:
        """The saved index when it was built for exactly ``fingerprint``; None otherwise."""
        try:
            meta = json.loads((directory / _META).read_text())
            if meta.get("fingerprint") != fingerprint:
                return None
            segments = tuple(Segment.load(directory / f"{_SEGMENT_PREFIX}{name}", name) for name in meta["segments"])
            live: list[npt.NDArray[np.bool_] | None] = []
            for seg, deleted in zip(segments, meta["deleted"], strict=True):
                mask = None
                if deleted:
                    mask = np.ones(len(seg), dtype=bool)
                    mask[deleted] = False
                live.append(mask)
            return cls._of(_state(segments, tuple(live)), fingerprint, float(meta["k1"]), float(meta["b"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _document_frequency(state: _State,
                        lists: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]] | None]) -> int:
    """Live chunks holding a term, from its postings in each segment."""
    return sum(len(found[0]) if live is None else int(np.count_nonzero(live[found[0]]))
               for found, live in zip(lists, state.live, strict=True) if found is not None)


def _okapi_idf(n: int, df: int) -> float:
    """BM25's (Lucene's) IDF of a term held by ``df`` of ``n`` chunks."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def _live_row(state: _State, chunk_id: str) -> tuple[int, int] | None:
    """The segment and row that hold ``chunk_id`` live, if any."""
    for s, (seg, live) in enumerate(zip(state.segments, state.live, strict=True)):
        row = seg.row_of.get(chunk_id)
        if row is not None and (live is None or bool(live[row])):
            return s, row
    return None


def _holds(found: tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]] | None, row: int) -> bool:
    if found is None:
        return False
    rows = found[0]
    i = int(np.searchsorted(rows, row))
    return i < len(rows) and int(rows[i]) == row


def _state(segments: tuple[Segment, ...], live: tuple[npt.NDArray[np.bool_] | None, ...]) -> _State:
    count = sum(len(s) if m is None else int(m.sum()) for s, m in zip(segments, live, strict=True))
    total = sum(int(s.lengths.sum() if m is None else s.lengths[m].sum()) for s, m in zip(segments, live, strict=True))
    return _State(segments, live, count, total)


def _allowed_mask(seg: Segment, allowed: Collection[str]) -> npt.NDArray[np.bool_]:
    mask = np.zeros(len(seg), dtype=bool)
    if len(allowed) < len(seg):
        mask[[r for cid in allowed if (r := seg.row_of.get(cid)) is not None]] = True
    else:
        mask[:] = np.fromiter((c in allowed for c in seg.chunk_ids), dtype=bool, count=len(seg))
    return mask


def _top(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _merge(state: _State) -> Segment:
    """One segment holding the live rows of every segment, in segment order."""
    terms: dict[str, int] = {}
    chunk_ids: list[str] = []
    term_parts, row_parts, tf_parts, length_parts = [], [], [], []
    offset = 0
    for seg, live in zip(state.segments, state.live, strict=True):
        local_terms = sorted(seg.vocab, key=seg.vocab.__getitem__)
        to_global = np.fromiter((terms.setdefault(t, len(terms)) for t in local_terms), dtype=np.int64,
                                count=len(local_terms))
        keep = np.ones(len(seg), dtype=bool) if live is None else live
        new_row = np.full(len(seg), -1, dtype=np.int64)
        new_row[keep] = offset + np.arange(int(keep.sum()))
        term_of_posting = np.repeat(np.arange(len(local_terms)), np.diff(seg.indptr))
        rows = new_row[seg.rows]
        alive = rows >= 0
        term_parts.append(to_global[term_of_posting[alive]])
        row_parts.append(rows[alive].astype(np.int32))
        tf_parts.append(seg.tfs[alive])
        length_parts.append(seg.lengths[keep])
        chunk_ids.extend(cid for row, cid in enumerate(seg.chunk_ids) if keep[row])
        offset += int(keep.sum())
    used = np.concatenate(term_parts) if term_parts else np.zeros(0, dtype=np.int64)
    vocab = list(terms)
    present = np.bincount(used, minlength=len(vocab)) > 0  # terms of deleted rows only are dropped
    remap = np.cumsum(present) - 1
    return Segment.from_postings(chunk_ids, [t for t, p in zip(vocab, present, strict=True) if p], remap[used],
                                 np.concatenate(row_parts) if row_parts else np.zeros(0, dtype=np.int32),
                                 np.concatenate(tf_parts) if tf_parts else np.zeros(0, dtype=np.float32),
                                 np.concatenate(length_parts) if length_parts else np.zeros(0, dtype=np.int32))
