"""HTML and PDF text extraction, run inside the parsing subprocess (see ``retriever.loaders``).

Everything here may be slow or memory-hungry on hostile input; the parent bounds it with a deadline and
an address-space limit and turns any failure into ``UnprocessableError``.
"""

from __future__ import annotations

import io
import json
import re
import resource
import sys

__all__ = ["ParseFailure", "extract_html", "extract_pdf", "main"]

_MAX_PDF_PAGES = 5000
_BLANKS = re.compile(r"[ \t\r\f\v]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_DROPPED_TAGS = ("script", "style", "noscript", "template", "svg", "head")


class ParseFailure(Exception):
    """The content cannot be turned into text; the message is safe to show to the client."""


def tidy(text: str) -> str:
    lines = (_BLANKS.sub(" ", line).strip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def extract_html(data: bytes) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.extract()
    return title, tidy(soup.get_text("\n"))


def extract_pdf(data: bytes) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseFailure("The PDF is encrypted.")
        if len(reader.pages) > _MAX_PDF_PAGES:
            raise ParseFailure(f"The PDF has more than {_MAX_PDF_PAGES} pages.")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str(reader.metadata.title or "") if reader.metadata is not None else ""
    except PyPdfError as exc:
        raise ParseFailure("The PDF is malformed.") from exc
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise ParseFailure("The PDF is malformed.") from exc
    return title, tidy("\n\n".join(pages))


_EXTRACTORS = {"html": extract_html, "pdf": extract_pdf}


def _parse(kind: str, data: bytes) -> dict[str, str]:
    try:
        title, text = _EXTRACTORS[kind](data)
        return {"status": "ok", "title": title, "text": text}
    except ParseFailure as exc:
        return {"status": "error", "message": str(exc)}
    except MemoryError:
        return {"status": "error", "message": "The file needs too much memory to parse."}
    except RecursionError:
        return {"status": "error", "message": "The file is nested too deeply to parse."}
    except Exception:
        return {"status": "error", "message": f"The {kind.upper()} file could not be parsed."}


def main(argv: list[str]) -> int:
    """``python -m retriever.parsers KIND MEMORY_BYTES``: file bytes on stdin, one JSON object on stdout."""
    kind, memory_bytes = argv[0], int(argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    data = sys.stdin.buffer.read()
    sys.stdout.write(json.dumps(_parse(kind, data), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
