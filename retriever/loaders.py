"""Uploads and files -> ``DocumentIn``: txt, md, html, pdf, with the type sniffed from the bytes.

Plain text is decoded in process (linear time). HTML and PDF are parsed in a fresh subprocess with a
deadline and an address-space cap, so decompression bombs, deeply nested markup or pathological files
cannot hang or crash the service: they become ``UnprocessableError``.

A file that is not one of these types, or text in an encoding ragd cannot tell for sure, is refused
(``UnsupportedMediaTypeError``, 415) rather than indexed as garbage: text is read as its declared
charset, UTF-8 (with or without BOM), UTF-16 with a BOM, or CP949 (legacy Korean), strictly.
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
from services.errors import PayloadTooLargeError, UnprocessableError, UnsupportedMediaTypeError

__all__ = ["DECLARED_TYPES", "SUFFIXES", "load_path", "load_upload", "sniff"]

Kind = Literal["text", "markdown", "html", "pdf"]
SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf"})
DEFAULT_MAX_BYTES = 10_000_000
_BINARY_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BZh", b"7z\xbc\xaf",
                 b"\xfd7zXZ", b"\x7fELF", b"MZ", b"Rar!", b"\x00\x00\x01\x00", b"OggS", b"ID3", b"RIFF")
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<div", b"<p>", b"<title", b"<meta", b"<table")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
# Declared content types an upload may carry (besides none and any text/*): the bytes decide the kind,
# but a part that says it is something else (an image, an archive) is refused before it is read.
DECLARED_TYPES = frozenset({"application/octet-stream", "application/pdf", "application/x-pdf",
                            "application/xhtml+xml", "application/x-markdown", "binary/octet-stream"})
_CONTROL_SHARE = 0.01  # more C0 control characters than this (besides whitespace) means binary
_WHITESPACE_CONTROLS = frozenset("\t\n\r\f\v")
_log = logging.getLogger("ragd.retriever")


def sniff(data: bytes) -> Kind:
    """The document kind from its bytes (names and content types are not trusted)."""
    head = data[:4096]
    if head.lstrip().startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(_BINARY_MAGIC):
        raise UnsupportedMediaTypeError("Unsupported file type: use txt, md, html or pdf.",
                                        code="unsupported_file_type")
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith(b"<") and any(marker in lowered for marker in _HTML_MARKERS):
        return "html"
    if _MD_HEADING.search(head.decode("utf-8", errors="replace")) or b"\n```" in head or b"](" in head:
        return "markdown"
    return "text"


def _decode(data: bytes, name: str, charset: str | None = None) -> str:
    """The declared charset, else UTF-8 (with or without BOM), UTF-16 with BOM or legacy Korean CP949,
    all strict: bytes none of them reads are refused, never decoded into U+FFFD."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = (charset,) if charset else ("utf-8-sig", "cp949")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    told = f"is not valid {charset} text" if charset else "is neither UTF-8, UTF-16 (with a BOM) nor CP949 text"
    raise UnsupportedMediaTypeError(
        f"File '{name}' {told}. Save it as UTF-8, or name its encoding in the part's Content-Type "
        "(e.g. text/plain; charset=iso-8859-1).", code="unsupported_encoding")


def _check_text(data: bytes, name: str, charset: str | None = None) -> str:
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnsupportedMediaTypeError(f"File '{name}' is binary: use txt, md, html or pdf.",
                                        code="unsupported_file_type")
    text = _decode(data, name, charset).lstrip("\ufeff").replace("\x00", "")
    head = text[:8192]
    controls = sum(1 for ch in head if ch < " " and ch not in _WHITESPACE_CONTROLS)
    if controls > _CONTROL_SHARE * len(head):
        raise UnsupportedMediaTypeError(f"File '{name}' is binary: use txt, md, html or pdf.",
                                        code="unsupported_file_type")
    return tidy(text) if "\r" in text else text.strip()


def _declared(content_type: str | None, name: str) -> str | None:
    """The charset a declared content type names; refuses a declared type that is no document."""
    if not content_type:
        return None
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media and not media.startswith("text/") and media not in DECLARED_TYPES:
        raise UnsupportedMediaTypeError(
            f"File '{name}' is declared as {media[:80]}: ragd reads txt, md, html and pdf files "
            "(text/*, application/pdf or application/octet-stream).", code="unsupported_file_type")
    match = re.search(r"charset\s*=\s*\"?([A-Za-z0-9._:-]{1,40})", params)
    return match.group(1) if match else None


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

    The kind is sniffed from ``data``; ``content_type`` is recorded, gives the charset of text, and a
    declared type that is no document (an image, an archive) is refused.
    """
    name = PurePath(filename.replace("\\", "/")).name or "upload"
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"File '{name}' is larger than {max_bytes} bytes.")
    charset = _declared(content_type, name)
    if not data.strip():
        raise UnprocessableError(f"File '{name}' is empty: it has no extractable text.", code="empty_document")
    kind = sniff(data)
    if kind in ("html", "pdf"):
        title, text = _parse_isolated(kind, data, timeout_s=timeout_s, memory_mb=memory_mb)
    else:
        text = _check_text(data, name, charset)
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
