"""Citations in Open WebUI's source form and as markdown references."""

from __future__ import annotations

import json

from gateway.citation_forms import markdown_references, openwebui_sources
from gateway.openai_schema import Citation
from gateway.sse import ChunkWriter, completion_body
from services.contracts import Usage


def _citation(index: int, doc: str = "d", title: str = "Title") -> Citation:
    return Citation(index=index, document_id=f"{doc}{index}", title=f"{title} {index}", chunk_id=f"c{index}",
                    score=0.5, snippet=f"passage {index}")


def test_source_k_is_the_one_cited_as_k_with_placeholders_for_skipped_numbers() -> None:
    sources = openwebui_sources([_citation(3), _citation(1)])
    assert [s["metadata"][0]["source"] for s in sources] == ["c1", "ragd:uncited:2", "c3"]
    assert sources[0] == {"source": {"id": "d1", "name": "Title 1"}, "document": ["passage 1"],
                          "metadata": [{"source": "c1", "name": "Title 1", "document_id": "d1", "chunk_id": "c1",
                                        "index": 1}]}
    assert "not cited" in sources[1]["source"]["name"]
    assert openwebui_sources([]) == []


def test_two_chunks_of_one_document_stay_two_sources() -> None:
    one, two = _citation(1, doc="same"), _citation(2, doc="same")
    two = two.model_copy(update={"document_id": "same1"})
    sources = openwebui_sources([one, two])
    assert len({s["metadata"][0]["source"] for s in sources}) == 2  # Open WebUI merges equal ids


def test_markdown_references_list_titles_in_order() -> None:
    text = markdown_references([_citation(2), _citation(1)])
    assert text == "\n\nReferences:\n\n- [1] **Title 1**: passage 1\n- [2] **Title 2**: passage 2"
    assert markdown_references([]) == ""


def test_bodies_and_streams_carry_sources_beside_citations() -> None:
    citations = [_citation(1), _citation(2)]
    body = completion_body(model="ragd", content="x [1][2]", finish_reason="stop", usage=Usage(), citations=citations)
    assert body["sources"] == openwebui_sources(citations) and len(body["citations"]) == 2
    writer = ChunkWriter("ragd")
    events = [json.loads(e.decode().removeprefix("data: ")) for e in writer.sources(citations)]
    assert [e["event"] for e in events] == [{"type": "source", "data": s} for s in openwebui_sources(citations)]
    assert all(e["choices"][0]["delta"] == {} and e["choices"][0]["finish_reason"] is None for e in events)
    final = json.loads(writer.finish("stop", citations).decode().removeprefix("data: "))
    assert final["sources"] == body["sources"] and final["citations"] == body["citations"]
