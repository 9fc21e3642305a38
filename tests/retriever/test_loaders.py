"""Loaders on ordinary and hostile inputs: type sniffing, encodings, limits, bombs, deep nesting."""

from __future__ import annotations

import io
import time
import zlib
from pathlib import Path

import pytest
from pypdf import PdfWriter

from retriever.loaders import load_path, load_upload, sniff
from services.errors import PayloadTooLargeError, UnprocessableError, UnsupportedMediaTypeError
from tests.retriever.conftest import CORPUS

MB = 1_000_000


def make_pdf(content: bytes, *, compress: bool = False) -> bytes:
    """A one-page PDF whose content stream is ``content`` (with a correct xref table)."""
    stream = zlib.compress(content) if compress else content
    flate = b"/Filter /FlateDecode " if compress else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< " + flate + b"/Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


PDF = make_pdf(b"BT /F1 12 Tf 72 720 Td (The harbour lighthouse was built in 1902.) Tj ET")


def test_text_markdown_and_encodings() -> None:
    doc = load_upload("notes.txt", "첫 줄입니다.\nSecond line.".encode(), "text/plain", max_bytes=MB)
    assert (doc.id, doc.title, doc.text) == ("notes.txt", "notes", "첫 줄입니다.\nSecond line.")
    assert doc.metadata == {"source": "notes.txt", "kind": "text", "language": "ko", "content_type": "text/plain"}
    assert load_upload("k.txt", "한국어 문서".encode("cp949"), None, max_bytes=MB).text == "한국어 문서"
    assert load_upload("u.txt", "\ufeffBOM text".encode(), None, max_bytes=MB).text == "BOM text"
    assert load_upload("w.txt", "wide".encode("utf-16"), None, max_bytes=MB).text == "wide"
    with pytest.raises(UnsupportedMediaTypeError, match="neither UTF-8") as refused:
        load_upload("b.txt", b"caf\xc3 ok \xff\xfe\x80 end", None, max_bytes=MB)
    assert refused.value.status == 415 and refused.value.code == "unsupported_encoding"
    latin = "café crème".encode("latin-1")
    assert load_upload("l.txt", latin, "text/plain; charset=iso-8859-1", max_bytes=MB).text == "café crème"
    with pytest.raises(UnsupportedMediaTypeError, match="not valid utf-8"):
        load_upload("l.txt", latin, "text/plain; charset=utf-8", max_bytes=MB)
    with pytest.raises(UnsupportedMediaTypeError, match="declared as image/png"):
        load_upload("notes.txt", b"plain words", "image/png", max_bytes=MB)
    with pytest.raises(UnsupportedMediaTypeError, match="binary"):
        load_upload("ctl.txt", bytes(range(1, 32)) * 50, "text/plain", max_bytes=MB)
    md = load_upload("guide.md", b"Intro line\n\n## Getting started\n\nRun it.", None, max_bytes=MB)
    assert md.title == "Getting started" and md.metadata["kind"] == "markdown"


def test_type_comes_from_bytes_not_name() -> None:
    assert sniff(PDF) == "pdf" and sniff(b"<!DOCTYPE html><html></html>") == "html"
    assert load_upload("report.pdf", b"just text, despite the name", "application/pdf", max_bytes=MB).metadata[
        "kind"] == "text"
    assert load_upload("page.txt", b"<html><body><p>Hi there</p></body></html>", None, max_bytes=MB).text == (
        "Hi there")
    for binary in (b"PK\x03\x04zipdata", b"\x89PNG\r\n\x1a\n....", b"\x7fELF\x02\x01", b"ab\x00\x00cd" * 10):
        with pytest.raises(UnprocessableError):
            load_upload("innocent.txt", binary, "text/plain", max_bytes=MB)


def test_html_drops_scripts_and_styles_and_keeps_title() -> None:
    page = (b"<!DOCTYPE html><html><head><title> Garden </title><style>p{color:red}</style></head><body>"
            b"<script>alert('x')</script><h1>Tomatoes</h1><p>Plant them   in sun.</p><noscript>JS!</noscript>"
            b"</body></html>")
    doc = load_upload("g.html", page, "text/html", max_bytes=MB)
    assert doc.title == "Garden" and doc.text == "Tomatoes\nPlant them in sun."


def test_pdf_text_and_broken_pdfs() -> None:
    doc = load_upload("lighthouse.pdf", PDF, "application/pdf", max_bytes=MB)
    assert doc.text == "The harbour lighthouse was built in 1902." and doc.metadata["kind"] == "pdf"
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    encrypted = io.BytesIO()
    writer.write(encrypted)
    with pytest.raises(UnprocessableError, match="encrypted"):
        load_upload("locked.pdf", encrypted.getvalue(), None, max_bytes=MB)
    for broken in (PDF[:150], b"%PDF-1.7\n" + b"\x00garbage" * 100):
        with pytest.raises(UnprocessableError):
            load_upload("broken.pdf", broken, None, max_bytes=MB)
    with pytest.raises(UnprocessableError, match="no extractable text"):
        load_upload("blank.pdf", make_pdf(b""), None, max_bytes=MB)


def test_decompression_bomb_is_refused_quickly() -> None:
    bomb = make_pdf(b"BT /F1 12 Tf 72 720 Td (" + b"A" * 100_000_000 + b") Tj ET", compress=True)
    assert len(bomb) < MB
    started = time.monotonic()
    with pytest.raises(UnprocessableError):
        load_upload("bomb.pdf", bomb, None, max_bytes=MB, memory_mb=384, timeout_s=20)
    assert time.monotonic() - started < 25


def test_deeply_nested_html_neither_hangs_nor_crashes() -> None:
    depth = 100_000
    page = b"<html><body>" + b"<div>" * depth + b"deep text" + b"</div>" * depth + b"</body></html>"
    started = time.monotonic()
    try:
        doc = load_upload("deep.html", page, None, max_bytes=10 * MB, timeout_s=3)
        assert doc.text == "deep text"
    except UnprocessableError:
        pass
    assert time.monotonic() - started < 8


def test_size_limit_and_huge_single_line() -> None:
    with pytest.raises(PayloadTooLargeError):
        load_upload("big.txt", b"x" * (MB + 1), None, max_bytes=MB)
    started = time.monotonic()
    doc = load_upload("line.txt", b"a" * (9 * MB), None, max_bytes=10 * MB)
    assert len(doc.text) == 9 * MB and time.monotonic() - started < 5
    with pytest.raises(UnprocessableError, match="no extractable text"):
        load_upload("empty.txt", b" \n\t ", None, max_bytes=MB)


def test_load_path_folder_and_file(tmp_path: Path) -> None:
    docs = load_path(CORPUS / "files")
    assert [d.id for d in docs] == ["ferry.txt", "garden.html", "lighthouse.md"]
    garden = docs[1]
    assert garden.title == "정원 가꾸기" and "토마토" in garden.text and "tracking" not in garden.text
    assert garden.metadata["language"] == "ko" and docs[0].metadata["language"] == "en"
    assert docs[2].title == "The Harbour Lighthouse"
    assert [d.id for d in load_path(CORPUS / "files" / "ferry.txt")] == ["ferry.txt"]
    with pytest.raises(FileNotFoundError):
        load_path(CORPUS / "absent")


def test_load_path_skips_bad_files_in_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "good.md").write_text("# Good\n\nFine text.")
    (folder / "bad.pdf").write_bytes(b"%PDF-1.4 nonsense")
    (folder / ".hidden.txt").write_text("secret")
    (folder / "image.png").write_bytes(b"\x89PNG")
    assert [d.id for d in load_path(folder)] == ["sub/good.md"]
    with pytest.raises(UnprocessableError):
        load_path(folder, skip_errors=False)
