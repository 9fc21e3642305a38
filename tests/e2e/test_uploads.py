"""The upload route end to end: curl's multipart (``-F files=@doc.pdf -F files=@doc.txt``) against a
real server, the uploaded text found by search and cited by chat, and hostile uploads, each refused
with a clear OpenAI-format error that leaves the collection exactly as it was, beside a valid control
that must succeed in the same test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import ADMIN_KEY, Server
from tests.e2e.route_registry import covers
from tests.e2e.uploads_helpers import AUTH, assert_openai_error, curl_upload, new_collection, state
from tests.retriever.test_loaders import make_pdf

pytestmark = pytest.mark.e2e

PDF_FACT = "The Quillon observatory was founded in 1887 by the astronomer Mara Ellison."
TXT_FACT = "Zephyrine ferries leave Portvale harbour every forty minutes from dawn until midnight."
MD_DOC = "# Brindle Orchard\n\nThe Brindle orchard grows seventeen kinds of pear on the northern slope.\n"
HTML_DOC = ("<!DOCTYPE html><html><head><title>Tessaly Bridge</title></head><body>"
            "<p>The Tessaly bridge spans the Orvel river with nine granite arches.</p></body></html>")


def _pdf(text: str) -> bytes:
    return make_pdf(b"BT /F1 12 Tf 72 720 Td (" + text.encode() + b") Tj ET")


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {"doc.pdf": _write(tmp_path, "doc.pdf", _pdf(PDF_FACT)),
            "doc.txt": _write(tmp_path, "doc.txt", TXT_FACT.encode()),
            "doc.md": _write(tmp_path, "doc.md", MD_DOC.encode()),
            "doc.html": _write(tmp_path, "doc.html", HTML_DOC.encode())}


@covers("POST", "/v1/collections/{name}/files")
def test_curl_upload_is_ingested_searchable_filterable_and_answerable(limited: Server,
                                                                     files: dict[str, Path]) -> None:
    name = new_collection(limited)
    status, report = curl_upload(limited, name, f"files=@{files['doc.pdf']}", f"files=@{files['doc.txt']}",
                                 f"files=@{files['doc.md']}", f"files=@{files['doc.html']}",
                                 'metadata={"tags": ["upload-test"], "team": "atlas"}')
    assert status == 200, report
    assert sorted(report["added"]) == sorted(files) and report["chunks_added"] >= 4

    def top(query: str, where: dict[str, object] | None = None) -> list[str]:
        body: dict[str, object] = {"query": query, "top_k": 4, **({"filter": where} if where else {})}
        response = httpx.post(limited.openai_base + f"/collections/{name}/search", json=body, headers=AUTH,
                              timeout=120)
        assert response.status_code == 200, response.text
        return [c["doc_id"] for c in response.json()["data"]]

    assert top("When was the Quillon observatory founded?")[0] == "doc.pdf"
    assert top("How often do Zephyrine ferries leave Portvale?")[0] == "doc.txt"
    assert top("Brindle orchard pear kinds")[0] == "doc.md"
    assert top("Tessaly bridge granite arches")[0] == "doc.html"
    # the upload's metadata field and the sniffed kind are filterable
    assert top("Quillon observatory", {"kind": "pdf"}) == ["doc.pdf"]
    assert set(top("Quillon observatory", {"tags": "upload-test"})) <= set(files)
    assert top("Quillon observatory", {"team": "someone-else"}) == []
    document = httpx.get(limited.openai_base + f"/collections/{name}/documents/doc.pdf", headers=AUTH, timeout=60)
    assert document.status_code == 200 and PDF_FACT in document.json()["text"]
    assert document.json()["metadata"]["team"] == "atlas"

    client = openai.OpenAI(base_url=limited.openai_base, api_key=ADMIN_KEY, max_retries=0, timeout=180)
    completion = client.chat.completions.create(
        model=f"ragd:{name}", max_tokens=16,
        messages=[{"role": "user", "content": "When was the Quillon observatory founded?"}])
    assert completion.choices[0].message.content
    citations = (completion.model_extra or {}).get("citations") or []
    assert "doc.pdf" in {c["document_id"] for c in citations}, citations


def test_reuploading_the_same_files_changes_nothing(limited: Server, files: dict[str, Path]) -> None:
    name = new_collection(limited)
    status, first = curl_upload(limited, name, f"files=@{files['doc.txt']}", f"files=@{files['doc.pdf']}")
    assert status == 200 and sorted(first["added"]) == ["doc.pdf", "doc.txt"], first
    before = state(limited, name)
    status, again = curl_upload(limited, name, f"files=@{files['doc.txt']}", f"files=@{files['doc.pdf']}")
    assert status == 200, again
    assert again["added"] == [] and again["updated"] == [] and sorted(again["unchanged"]) == ["doc.pdf", "doc.txt"]
    assert again["chunks_added"] == 0 and again["epoch"] == before.epoch
    assert state(limited, name) == before


# ---------------------------------------------------------------- hostile uploads, each with a control

Part = tuple[str, tuple[str, bytes, str] | str]  # (field, (filename, bytes, content type)) or (field, text)


@dataclass(frozen=True)
class Hostile:
    parts: Callable[[], list[Part]]
    status: int
    code: str | None
    mentions: str = ""
    collection: str | None = None  # None: the test's own collection
    extra: dict[str, str] = field(default_factory=dict)


def _file(name: str, data: bytes, content_type: str = "text/plain") -> Part:
    return ("files", (name, data, content_type))


GOOD = _file("good.txt", b"A perfectly ordinary note about the Zephyrine ferry timetable.")
HOSTILE: dict[str, Hostile] = {
    "empty file": Hostile(lambda: [_file("empty.txt", b"")], 422, "empty_document", "empty.txt"),
    "whitespace only": Hostile(lambda: [_file("blank.txt", b" \n\t \n")], 422, "empty_document", "blank.txt"),
    "over the size limit": Hostile(lambda: [_file("big.txt", b"harbour ferry " * 20_000)], 413,
                                   "payload_too_large", "200000"),
    "declared as an image": Hostile(lambda: [_file("notes.txt", b"Plain words in a text file.", "image/png")], 415,
                                    "unsupported_file_type", "image/png"),
    "unknown content type": Hostile(lambda: [_file("notes.bin", b"Plain words.", "application/x-unknown-thing")],
                                    415, "unsupported_file_type", "application/x-unknown-thing"),
    "binary disguised as txt": Hostile(lambda: [_file("notes.txt", bytes(range(256)) * 40)], 415,
                                       "unsupported_file_type", "notes.txt"),
    "png disguised as txt": Hostile(lambda: [_file("photo.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)],
                                    415, "unsupported_file_type"),
    "control characters as txt": Hostile(lambda: [_file("ctl.txt", bytes(range(1, 32)) * 100)], 415,
                                         "unsupported_file_type", "ctl.txt"),
    "truncated pdf": Hostile(lambda: [_file("cut.pdf", _pdf(PDF_FACT)[:150], "application/pdf")], 422, None),
    "malformed pdf": Hostile(lambda: [_file("bad.pdf", b"%PDF-1.7\n1 0 obj<</Type/Catalog" + b"\x00\xff" * 500,
                                            "application/pdf")], 422, None),
    "pdf without text": Hostile(lambda: [_file("blank.pdf", make_pdf(b""), "application/pdf")], 422,
                                "empty_document", "blank.pdf"),
    "non-utf-8 text": Hostile(lambda: [_file("latin.txt", b"caf\xc3 \xff\xfe broken \xed\xa0\x80 bytes")], 415,
                              "unsupported_encoding", "latin.txt"),
    "wrong declared charset": Hostile(lambda: [_file("l.txt", "café".encode("latin-1"), "text/plain; charset=utf-8")],
                                      415, "unsupported_encoding", "utf-8"),
    "path traversal name": Hostile(lambda: [_file("../../etc/passwd.txt", b"root:x:0:0")], 400, "invalid_filename",
                                   "path"),
    "windows path traversal": Hostile(lambda: [_file("..\\..\\boot.ini", b"[boot loader]")], 400, "invalid_filename"),
    "absolute path name": Hostile(lambda: [_file("/etc/hosts", b"127.0.0.1 localhost")], 400, "invalid_filename"),
    "NUL in the name": Hostile(lambda: [_file("evil\x00.txt", b"hidden")], 400, "invalid_filename"),
    "escape character in the name": Hostile(lambda: [_file("evil\x1b[31m.txt", b"hidden")], 400, "invalid_filename"),
    "very long name": Hostile(lambda: [_file("n" * 300 + ".txt", b"A note with a long name.")], 400,
                              "invalid_filename", "255"),
    "over the file count limit": Hostile(lambda: [_file(f"f{i}.txt", f"Note number {i}.".encode()) for i in range(5)],
                                         400, "too_many_files", "4"),
    "same name twice in one request": Hostile(lambda: [_file("twin.txt", b"First twin."),
                                                       _file("twin.txt", b"Second twin.")], 400, None, "twin.txt"),
    "one bad file among good ones": Hostile(lambda: [GOOD, _file("cut.pdf", b"%PDF-1.4 nonsense", "application/pdf")],
                                            422, None),
    "no files field": Hostile(lambda: [("attachment", ("a.txt", b"Some text.", "text/plain"))], 400, None, "files"),
    "metadata that is not JSON": Hostile(lambda: [GOOD, ("metadata", "team=atlas")], 400, None, "metadata"),
    "missing collection": Hostile(lambda: [GOOD], 404, "collection_not_found", "does not exist",
                                  collection="no-such-collection"),
}


def _multipart(parts: list[Part], boundary: bytes) -> bytes:
    """The body a hostile client writes byte for byte (httpx would percent-encode a NUL in a file name)."""
    out = b""
    for field_name, value in parts:
        out += b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + field_name.encode() + b'"'
        if isinstance(value, tuple):
            filename, data, content_type = value
            out += b'; filename="' + filename.encode() + b'"\r\nContent-Type: ' + content_type.encode()
            out += b"\r\n\r\n" + data + b"\r\n"
        else:
            out += b"\r\n\r\n" + value.encode() + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def _post(server: Server, name: str, parts: list[Part]) -> httpx.Response:
    boundary = b"ragd-test-boundary-7d1f"
    headers = {**AUTH, "content-type": f"multipart/form-data; boundary={boundary.decode()}"}
    return httpx.post(server.openai_base + f"/collections/{name}/files", content=_multipart(parts, boundary),
                      headers=headers, timeout=300)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_upload_is_refused_clearly_and_changes_nothing_beside_a_valid_control(
        limited: Server, tmp_path: Path, case: str) -> None:
    hostile = HOSTILE[case]
    name = new_collection(limited, "hostile")
    seeded = _write(tmp_path, "seed.txt", TXT_FACT.encode())
    status, report = curl_upload(limited, name, f"files=@{seeded}")
    assert status == 200 and report["added"] == ["seed.txt"], report
    before = state(limited, name)

    response = _post(limited, hostile.collection or name, hostile.parts())
    assert response.status_code == hostile.status, response.text
    assert_openai_error(response.json(), hostile.code, mentions=hostile.mentions)
    assert state(limited, name) == before  # documents, chunks, epoch and search results as they were

    control = _write(tmp_path, "control.txt", b"The control note says the Quillon observatory opens at nine.")
    status, report = curl_upload(limited, name, f"files=@{control}")
    assert status == 200 and report["added"] == ["control.txt"], report
    assert state(limited, name).documents == before.documents + 1


def test_upload_without_multipart_is_refused_beside_a_valid_control(limited: Server, files: dict[str, Path]) -> None:
    name = new_collection(limited, "hostile")
    before = state(limited, name)
    response = httpx.post(limited.openai_base + f"/collections/{name}/files", json={"files": ["doc.txt"]},
                          headers=AUTH, timeout=60)
    assert response.status_code == 400, response.text
    assert_openai_error(response.json(), None, mentions="multipart")
    assert state(limited, name) == before
    status, report = curl_upload(limited, name, f"files=@{files['doc.txt']};type=text/plain")
    assert status == 200 and report["added"] == ["doc.txt"], report


def test_declared_charset_is_honoured(limited: Server) -> None:
    name = new_collection(limited)
    latin = "Le café crème du port de Portvale.".encode("latin-1")
    response = _post(limited, name, [_file("latin.txt", latin, "text/plain; charset=iso-8859-1")])
    assert response.status_code == 200 and response.json()["added"] == ["latin.txt"], response.text
    text = httpx.get(limited.openai_base + f"/collections/{name}/documents/latin.txt", headers=AUTH,
                     timeout=60).json()["text"]
    assert text == "Le café crème du port de Portvale."
