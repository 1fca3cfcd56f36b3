"""Documents for Gemini: PDFs and plain-text files, checked to be what they claim before they go.

Gemini reads PDFs (`application/pdf`) and plain text (`text/plain`, `text/markdown`...) as parts
of a request, inline or through the Files API, as it reads images. A document travels as an
`ImageInput` (MIME type and bytes): that is all a part needs, and so it takes the same way to
Gemini (`core.gemini.generation`, `core.gemini.files`) and into a thread's stored turns.

What a file claims to be (its name, the MIME type its uploader's browser guessed) only says which
check applies: a PDF must start with `%PDF-`, a text file must decode as UTF-8. A CSV is sent as
text, never parsed.
"""

from __future__ import annotations

from core.errors import InvalidInput
from core.gemini.images import MAX_FILE_BYTES, ImageInput

PDF = "application/pdf"
#: File name endings read as text, and the MIME type each is sent as.
# All go as text/plain: Google's document list names a MIME type for Markdown that is not the
# registered `text/markdown`, and text/plain is what every model takes; Markdown reads as text.
TEXT_ENDINGS = (".txt", ".md", ".markdown", ".csv")
#: MIME types (as uploaders claim them) read as text.
TEXT_MIME_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown", "text/csv"})
TEXT = "text/plain"
SUPPORTED = "PDF, .txt, .md and .csv files"


class NotADocument(InvalidInput):
    """A file said to be a PDF or text whose bytes are not."""


def _describe(filename: str | None) -> str:
    return f"{filename} is" if filename else "that file is"


def document_type(*, filename: str | None, mime_type: str | None) -> str | None:
    """The MIME type a file is sent to Gemini as, if its name or claimed type says it is a
    document (None: it is not one, and may be an image); nothing is trusted until `prepare_document`."""
    name = (filename or "").lower()
    claimed = (mime_type or "").split(";")[0].strip().lower()
    if name.endswith(".pdf") or claimed == PDF:
        return PDF
    if name.endswith(TEXT_ENDINGS) or claimed in TEXT_MIME_TYPES:
        return TEXT
    return None


def prepare_document(data: bytes, *, mime_type: str, filename: str | None = None) -> ImageInput:
    """`data` as a document part of MIME type `mime_type` (from `document_type`), once checked.

    A PDF must begin with `%PDF-` (allowing a UTF-8 BOM or whitespace some tools write first);
    text must be UTF-8 (a BOM is dropped) with no NUL byte. Raises NotADocument, with one line
    naming the file, for an empty file, bytes that are not what they claim, or more than the Files
    API takes.
    """
    if not data:
        raise NotADocument(f"{_describe(filename)} empty")
    if len(data) > MAX_FILE_BYTES:
        raise NotADocument(f"{_describe(filename)} larger than the 2 GB Gemini accepts")
    if mime_type == PDF:
        if not data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"%PDF-"):
            raise NotADocument(f"{_describe(filename)} not a PDF (it does not start as one)")
        return ImageInput(PDF, data)
    if b"\x00" in data[:8192]:
        raise NotADocument(f"{_describe(filename)} not a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotADocument(
            f"{_describe(filename)} not UTF-8 text; save it as UTF-8 and send it again"
        ) from None
    return ImageInput(mime_type, text.encode("utf-8"))
