"""Uploads and files -> ``DocumentIn``: txt, md, html, pdf, with the type sniffed from the bytes.

Plain text is decoded in process (linear time). HTML and PDF are parsed in a fresh subprocess with a
deadline and an address-space cap, so decompression bombs, deeply nested markup or pathological files
cannot hang or crash the service: they become ``UnprocessableError``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path, PurePath
from typing import Literal

from retriever.parsers import tidy
from retriever.text import detect_language
from services.contracts import DocumentIn
from services.errors import PayloadTooLargeError, UnprocessableError

__all__ = ["SUFFIXES", "load_path", "load_upload", "sniff"]

Kind = Literal["text", "markdown", "html", "pdf"]
SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf"})
DEFAULT_MAX_BYTES = 10_000_000
_BINARY_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BZh", b"7z\xbc\xaf",
                 b"\xfd7zXZ", b"\x7fELF", b"MZ", b"Rar!", b"\x00\x00\x01\x00", b"OggS", b"ID3", b"RIFF")
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<div", b"<p>", b"<title", b"<meta", b"<table")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_log = logging.getLogger("ragd.retriever")


def sniff(data: bytes) -> Kind:
    """The document kind from its bytes (names and content types are not trusted)."""
    head = data[:4096]
    if head.lstrip().startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(_BINARY_MAGIC):
        raise UnprocessableError("Unsupported file type: use txt, md, html or pdf.", code="unsupported_file_type")
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith(b"<") and any(marker in lowered for marker in _HTML_MARKERS):
        return "html"
    if _MD_HEADING.search(_decode(head)) or b"\n```" in head or b"](" in head:
        return "markdown"
    return "text"


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, legacy Korean cp949; otherwise UTF-8 with U+FFFD."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def _check_text(data: bytes) -> str:
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnprocessableError("Unsupported binary file: use txt, md, html or pdf.", code="unsupported_file_type")
    text = _decode(data).lstrip("\ufeff").replace("\x00", "")
    return tidy(text) if "\r" in text else text.strip()


def _parse_isolated(kind: str, data: bytes, *, timeout_s: float, memory_mb: int) -> tuple[str, str]:
    """Parse in a fresh interpreter (``python -m retriever.parsers``), killed at the deadline."""
    project_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [project_root, os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-m", "retriever.parsers", kind, str(memory_mb * 1024 * 1024)],
                              input=data, capture_output=True, timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise UnprocessableError(f"Parsing the {kind.upper()} file took longer than {timeout_s:g} s.",
                                 code="parse_timeout") from None
    try:
        result = json.loads(done.stdout)
    except ValueError:
        raise UnprocessableError(f"The {kind.upper()} file could not be parsed.") from None
    if result.get("status") != "ok":
        raise UnprocessableError(str(result.get("message", "The file could not be parsed.")))
    return str(result["title"]), str(result["text"])


def load_upload(filename: str, data: bytes, content_type: str | None = None, *, max_bytes: int,
                timeout_s: float = 20.0, memory_mb: int = 1024, doc_id: str | None = None) -> DocumentIn:
    """One uploaded file as a document; its id is the file name unless ``doc_id`` is given.

    ``content_type`` is recorded only; the kind is sniffed from ``data``.
    """
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"File '{filename}' is larger than {max_bytes} bytes.")
    kind = sniff(data)
    name = PurePath(filename.replace("\\", "/")).name or "upload"
    if kind in ("html", "pdf"):
        title, text = _parse_isolated(kind, data, timeout_s=timeout_s, memory_mb=memory_mb)
    else:
        text = _check_text(data)
        heading = _MD_HEADING.search(text[:4096]) if kind == "markdown" else None
        title = heading.group(1) if heading else ""
    if not text.strip():
        raise UnprocessableError(f"File '{name}' has no extractable text.", code="empty_document")
    metadata: dict[str, str | int | float | bool] = {"source": name, "kind": kind,
                                                     "language": detect_language(text[:20000])}
    if content_type:
        metadata["content_type"] = content_type[:100]
    return DocumentIn(id=(doc_id or name)[:256], title=(title or PurePath(name).stem)[:1024], text=text,
                      metadata=metadata)


def load_path(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout_s: float = 20.0,
              skip_errors: bool = True) -> list[DocumentIn]:
    """A file, or every txt/md/html/pdf file under a folder (ids: paths relative to the folder).

    In a folder, files that cannot be loaded are skipped with a warning (``skip_errors``); a single named
    file that cannot be loaded raises.
    """
    root = Path(path)
    if root.is_file():
        return [load_upload(root.name, root.read_bytes(), None, max_bytes=max_bytes, timeout_s=timeout_s)]
    if not root.is_dir():
        raise FileNotFoundError(str(root))
    docs: list[DocumentIn] = []
    for file in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES):
        relative = file.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        try:
            if file.stat().st_size > max_bytes:
                raise PayloadTooLargeError(f"File '{relative}' is larger than {max_bytes} bytes.")
            docs.append(load_upload(file.name, file.read_bytes(), None, max_bytes=max_bytes,
                                    timeout_s=timeout_s, doc_id=relative.as_posix()))
        except (UnprocessableError, PayloadTooLargeError) as exc:
            if not skip_errors:
                raise
            _log.warning("skipped file", extra={"ragd": {"file": relative.as_posix(), "reason": exc.message}})
    return docs
