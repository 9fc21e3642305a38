"""Citations in the forms clients render, beside ragd's own ``citations`` extension field.

- **Open WebUI** shows a message's ``sources`` (its source objects: ``source``, ``document``,
  ``metadata``) under the answer and links an inline ``[n]`` to the n-th of them. From an
  OpenAI-compatible connection it takes them from a streamed chunk's ``event`` field (an event of
  type ``source``, one per chunk; ``open_webui/utils/middleware.py``, ``stream_body_handler``) and
  from the ``sources`` of a non-streamed body (the ``chat:completion`` event its frontend reads).
  Position matters: source k must be the one the answer cites as ``[k]``.
- **Text-only clients** get numbered references with titles in the answer's markdown
  (:func:`markdown_references`), when a request or the server asks for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from gateway.openai_schema import Citation

__all__ = ["REFERENCE_STYLES", "ReferenceStyle", "markdown_references", "openwebui_source", "openwebui_sources"]

ReferenceStyle = Literal["fields", "markdown"]
REFERENCE_STYLES: tuple[ReferenceStyle, ...] = ("fields", "markdown")

_SNIPPET_CHARS = 160


def openwebui_source(citation: Citation) -> dict[str, Any]:
    """One citation as an Open WebUI source object. ``metadata.source`` is the chunk id, unique per
    citation, because Open WebUI merges sources with the same id into one (and then numbers shift)."""
    name = citation.title or citation.document_id
    return {
        "source": {"id": citation.document_id, "name": name},
        "document": [citation.snippet],
        "metadata": [{"source": citation.chunk_id, "name": name, "document_id": citation.document_id,
                      "chunk_id": citation.chunk_id, "index": citation.index}],
    }


def _uncited(number: int) -> dict[str, Any]:
    ident = f"ragd:uncited:{number}"
    return {"source": {"id": ident, "name": f"Source {number} (not cited)"},
            "document": ["The model was given this source and did not cite it."],
            "metadata": [{"source": ident, "name": f"Source {number} (not cited)", "index": number}]}


def openwebui_sources(citations: Sequence[Citation]) -> list[dict[str, Any]]:
    """Open WebUI's ``sources`` list: position k holds the source cited as ``[k]``; a number the
    answer skips (it cites [1] and [3]) holds a placeholder, so later numbers still line up."""
    by_index = {c.index: c for c in citations}
    if not by_index:
        return []
    return [openwebui_source(by_index[n]) if n in by_index else _uncited(n) for n in range(1, max(by_index) + 1)]


def markdown_references(citations: Sequence[Citation]) -> str:
    """The citations as a numbered markdown list with titles, to append to an answer; empty for none."""
    if not citations:
        return ""
    lines = []
    for citation in sorted(citations, key=lambda c: c.index):
        snippet = " ".join(citation.snippet.split())
        if len(snippet) > _SNIPPET_CHARS:
            snippet = snippet[:_SNIPPET_CHARS].rstrip() + "…"
        title = citation.title or citation.document_id
        lines.append(f"- [{citation.index}] **{title}**: {snippet}" if snippet else f"- [{citation.index}] **{title}**")
    return "\n\nReferences:\n\n" + "\n".join(lines)
