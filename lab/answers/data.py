"""Question-answering datasets for ``ragd eval rag``: a BEIR folder with ``answers.jsonl``, or a SQuAD-format
JSON (the original KorQuAD/XQuAD file, converted at load time, never written out).

A dataset is a corpus plus questions, each with its gold passages and, where the dataset has them, its gold
answers. ``split_heldout`` takes a seeded share of the documents out of the corpus, each with its near-duplicates
(KorQuAD holds the same paragraph twice under one article, and in a few other articles too): their questions
become same-domain questions the ingested documents do not cover.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import statistics
import unicodedata
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from retriever.text import detect_language
from services.contracts import DocumentIn

__all__ = ["LONG_ANSWER_CHARS", "QADataset", "QAItem", "in_calibration_split", "load_qa", "near_duplicates",
           "sample_items", "split_heldout"]

# A dataset whose typical gold answer is longer than this, or whose answers are mostly whole sentences, is scored on
# citations and abstention only.
LONG_ANSWER_CHARS = 60
# how a sentence ends ("... 진학했다.", "... in 1910.", "...입니다!"): a span answer (XQuAD, KorQuAD) almost never does
_SENTENCE_END = re.compile(r"[.!?。！？]\s*$")


@dataclass(frozen=True)
class QAItem:
    """One question: its gold passages (document ids) and gold answers (empty when the dataset has none)."""

    qid: str
    question: str
    gold_docs: tuple[str, ...]
    answers: tuple[str, ...] = ()
    language: str = "en"
    answerable: bool = True


@dataclass(frozen=True)
class QADataset:
    name: str
    docs: list[DocumentIn]
    items: list[QAItem]
    short_answers: bool

    def doc_text(self) -> dict[str, str]:
        return {str(d.id): d.text for d in self.docs}


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _read_qrels(path: Path) -> dict[str, list[str]]:
    qrels: dict[str, list[str]] = {}
    if not path.is_file():
        return qrels
    with path.open(encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or (i == 0 and not parts[2].lstrip("-").isdigit()):
                continue
            if int(parts[2]) > 0:
                qrels.setdefault(parts[0], []).append(parts[1])
    return qrels


def _short(items: Sequence[QAItem]) -> bool:
    """Whether the gold answers are short spans to look for in an answer: short, and not mostly whole sentences (a
    Korean free-text answer of one sentence is often under 60 characters)."""
    answers = [item.answers[0] for item in items if item.answers]
    sentences = sum(bool(_SENTENCE_END.search(a)) for a in answers)
    return bool(answers) and statistics.median(map(len, answers)) <= LONG_ANSWER_CHARS and sentences <= len(answers) / 2


def load_beir_qa(directory: Path, split: str = "test") -> QADataset:
    """``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv`` and optional ``answers.jsonl``
    (``{"_id", "answers": [...]}``, optionally ``question``, ``corpus-id`` and ``retrieval_query_id``).

    Only ``_id``, ``title`` and ``text`` of the corpus and queries are read (a ``metadata`` field may hold gold)."""
    docs = [DocumentIn(id=str(row["_id"]), title=str(row.get("title") or ""), text=str(row["text"]))
            for row in _read_jsonl(directory / "corpus.jsonl") if str(row.get("text") or "").strip()]
    known = {str(d.id) for d in docs}
    queries = {str(row["_id"]): str(row["text"]) for row in _read_jsonl(directory / "queries.jsonl")}
    qrels = _read_qrels(directory / "qrels" / f"{split}.tsv")
    answers_path = directory / "answers.jsonl"
    rows = list(_read_jsonl(answers_path)) if answers_path.is_file() else [{"_id": q} for q in qrels]
    items = []
    for row in rows:
        qid = str(row["_id"])
        query_id = str(row.get("retrieval_query_id") or qid)
        question = str(row.get("question") or queries.get(query_id) or queries.get(qid) or "").strip()
        gold = list(qrels.get(query_id, qrels.get(qid, [])))
        if row.get("corpus-id") and str(row["corpus-id"]) not in gold:
            gold.append(str(row["corpus-id"]))
        gold = [g for g in gold if g in known]
        if not question or not gold:
            continue
        answers = tuple(str(a) for a in row.get("answers", []) if str(a).strip())
        items.append(QAItem(qid, question, tuple(gold), answers, detect_language(question)))
    return QADataset(f"{directory.name}:{split}", docs, items, _short(items))


def load_squad_json(path: Path) -> QADataset:
    """A SQuAD-format file (KorQuAD 1.0, XQuAD): each distinct paragraph is a document (article title as
    title, id ``sq-`` + sha256 of the context), each question's gold passage is the one it was asked about."""
    data = json.loads(path.read_text(encoding="utf-8"))
    docs: dict[str, DocumentIn] = {}
    items = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"].strip()
            doc_id = "sq-" + hashlib.sha256(context.encode("utf-8")).hexdigest()[:16]
            docs.setdefault(doc_id, DocumentIn(id=doc_id, title=str(article.get("title", "")), text=context))
            for qa in paragraph["qas"]:
                question = qa["question"].strip()
                answers = tuple(dict.fromkeys(a["text"].strip() for a in qa.get("answers", []) if a["text"].strip()))
                items.append(QAItem(str(qa["id"]), question, (doc_id,), answers, detect_language(question)))
    return QADataset(path.stem, list(docs.values()), items, _short(items))


def load_qa(path: Path, split: str = "test") -> QADataset:
    """A SQuAD-format JSON file (or a folder holding one, which then wins: KorQuAD's licence wants the
    original read at load time), else a BEIR folder."""
    if path.is_file():
        return load_squad_json(path)
    for candidate in sorted(path.glob("*.json")):
        if _is_squad(candidate):
            return load_squad_json(candidate)
    if (path / "corpus.jsonl").is_file():
        return load_beir_qa(path, split)
    raise FileNotFoundError(f"{path}: neither a BEIR folder (corpus.jsonl, queries.jsonl, qrels/) nor SQuAD JSON")


def _is_squad(path: Path) -> bool:
    with path.open(encoding="utf-8") as handle:
        head = handle.read(4096)
    return '"data"' in head and ('"paragraphs"' in head or '"title"' in head)


def in_calibration_split(qid: str) -> bool:
    """A fixed ~20 % of questions (by hash of their id) kept for choosing settings, never evaluated."""
    return int(hashlib.sha1(qid.encode()).hexdigest(), 16) % 5 == 0


# Near-duplicates: documents sharing at least this share of the smaller one's character shingles.
_DUPLICATE_CONTAINMENT = 0.8
_SHINGLE = 8
_COMMON_SHINGLE_DOCS = 50  # a shingle this many documents hold is boilerplate, not evidence of a copy
_SPACE = re.compile(r"\s+")


def _shingles(text: str) -> set[str]:
    flat = _SPACE.sub("", unicodedata.normalize("NFKC", text).casefold())
    return {flat[i:i + _SHINGLE] for i in range(max(1, len(flat) - _SHINGLE + 1))}


def near_duplicates(docs: Sequence[DocumentIn], of: set[str]) -> set[str]:
    """Ids of the documents outside ``of`` that nearly copy one inside it, or a copy of one, to a fixed point (at
    least ``_DUPLICATE_CONTAINMENT`` of the smaller document's 8-character shingles, spacing and case ignored, are
    shared)."""
    shingles = {str(d.id): _shingles(d.text) for d in docs}
    postings: dict[str, list[str]] = defaultdict(list)
    for doc_id, grams in shingles.items():
        for gram in grams:
            postings[gram].append(doc_id)
    found: set[str] = set()
    frontier = sorted(of & shingles.keys())
    while frontier:
        copies: set[str] = set()
        for doc_id in frontier:
            shared: dict[str, int] = defaultdict(int)
            for gram in shingles[doc_id]:
                holders = postings[gram]
                if len(holders) <= _COMMON_SHINGLE_DOCS:
                    for other in holders:
                        shared[other] += 1
            copies |= {other for other, count in shared.items() if other not in of and other not in found
                       and count >= _DUPLICATE_CONTAINMENT * min(len(shingles[doc_id]), len(shingles[other]))}
        found |= copies
        frontier = sorted(copies)
    return found


def split_heldout(dataset: QADataset, share: float, seed: int) -> tuple[list[DocumentIn], QADataset]:
    """The documents to ingest, and the dataset with each question marked answerable or not: a question
    whose gold passages were all held out is unanswerable from what was ingested. A seeded share of the
    documents is held out, and with each its near-duplicates (:func:`near_duplicates`): a copy left in the
    corpus would answer the held-out passage's questions, which are then not unanswerable."""
    ordered = sorted(dataset.docs, key=lambda d: str(d.id))
    held = set(str(d.id) for d in random.Random(seed).sample(ordered, round(share * len(ordered))))
    held |= near_duplicates(ordered, held)
    kept = [d for d in ordered if str(d.id) not in held]
    items = [replace(item, answerable=not all(g in held for g in item.gold_docs)) for item in dataset.items]
    return kept, replace(dataset, items=items)


def sample_items(items: Sequence[QAItem], limit: int | None, seed: int, *, calibration: bool = False) -> list[QAItem]:
    """``limit`` questions drawn with ``seed`` from the evaluation split (or the calibration split)."""
    pool = sorted((i for i in items if in_calibration_split(i.qid) == calibration), key=lambda i: i.qid)
    if limit is not None and limit < len(pool):
        pool = random.Random(seed).sample(pool, limit)
    return pool
