"""PDFs and text files for Gemini: told apart by what they claim, checked by what they are."""

from __future__ import annotations

import pytest

from core.gemini.documents import NotADocument, document_type, prepare_document
from core.gemini.failures import UploadFailed
from core.gemini.generation import generate
from tests.support.gemini import GeminiStandIn
from tests.support.gemini_support import decode_base64, gemini_client

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.mark.parametrize(
    ("filename", "mime_type", "expected"),
    [
        ("report.pdf", None, "application/pdf"),
        ("REPORT.PDF", "application/octet-stream", "application/pdf"),
        ("scan", "application/pdf", "application/pdf"),
        ("notes.txt", None, "text/plain"),
        ("plan.md", "", "text/plain"),
        ("table.csv", "text/csv", "text/plain"),
        ("untitled", "text/plain; charset=utf-8", "text/plain"),
        ("chart.png", "image/png", None),
        ("deck.pptx", "application/vnd.ms-powerpoint", None),
        (None, None, None),
    ],
)
def test_what_a_file_claims_picks_the_check(
    filename: str | None, mime_type: str | None, expected: str | None
) -> None:
    assert document_type(filename=filename, mime_type=mime_type) == expected


def test_a_pdf_is_sent_as_it_is() -> None:
    document = prepare_document(PDF, mime_type="application/pdf", filename="r.pdf")
    assert (document.mime_type, document.data) == ("application/pdf", PDF)
    assert prepare_document(b"\n" + PDF, mime_type="application/pdf").data == b"\n" + PDF


@pytest.mark.parametrize(
    ("data", "mime_type", "message"),
    [
        (b"", "application/pdf", "r is empty"),
        (b"<html>sign in</html>", "application/pdf", "r is not a PDF"),
        (b"PK\x03\x04", "application/pdf", "r is not a PDF"),
        (b"caf\xe9", "text/plain", "r is not UTF-8 text"),
        (b"a\x00b", "text/plain", "r is not a text file"),
    ],
)
def test_what_is_not_what_it_claims_is_refused_in_one_line(data: bytes, mime_type: str, message: str) -> None:
    with pytest.raises(NotADocument, match=message) as caught:
        prepare_document(data, mime_type=mime_type, filename="r")
    assert "\n" not in str(caught.value)


def test_text_is_utf8_without_its_bom() -> None:
    document = prepare_document(b"\xef\xbb\xbfcaf\xc3\xa9", mime_type="text/plain")
    assert (document.mime_type, document.data) == ("text/plain", "café".encode())


def test_a_large_document_is_uploaded_and_referred_to_by_uri(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.processing(gets=1)
    big = prepare_document(PDF + b"%" + b"x" * 9000 + b"\n", mime_type="application/pdf")
    small = prepare_document(b"notes", mime_type="text/plain")
    generate(gemini_client(gemini_standin, inline_image_limit=8_000), "read", images=[big, small])
    [stored] = gemini_standin.files()
    assert (stored.state, stored.mime_type, stored.data) == ("ACTIVE", "application/pdf", big.data)
    parts = gemini_standin.last("generate").json["contents"][0]["parts"]
    assert parts[0] == {"fileData": {"file_uri": stored.uri, "mime_type": "application/pdf"}}
    assert parts[1]["inlineData"]["mime_type"] == "text/plain"
    assert decode_base64(parts[1]["inlineData"]["data"]) == b"notes"


def test_a_failed_document_upload_says_file(gemini_standin: GeminiStandIn) -> None:
    gemini_standin.fail_processing()
    big = prepare_document(PDF + b"%" + b"x" * 9000 + b"\n", mime_type="application/pdf")
    with pytest.raises(UploadFailed, match=r"could not process the uploaded file .*; try another file"):
        generate(gemini_client(gemini_standin, inline_image_limit=8_000), "x", images=[big])
    assert gemini_standin.requests("generate") == []
