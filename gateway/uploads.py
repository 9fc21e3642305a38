"""The multipart form of ``POST /v1/collections/{name}/files`` -> documents, all or nothing.

Every part is checked and parsed before anything is ingested, so a refused request (one bad file
among good ones included) leaves the collection exactly as it was. Each refusal names the file.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import unicodedata
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from gateway.settings import GatewaySettings
from services.contracts import DocumentIn, MetadataValue
from services.errors import InvalidRequestError, PayloadTooLargeError

__all__ = ["FILES_FIELD", "METADATA_FIELD", "read_documents"]

FILES_FIELD = "files"
METADATA_FIELD = "metadata"
MAX_FILENAME_CHARS = 255
_METADATA = TypeAdapter(dict[str, MetadataValue])


async def read_documents(request: Request, settings: GatewaySettings) -> list[DocumentIn]:
    """The uploaded files as documents (with the optional ``metadata`` field's JSON object on each)."""
    form = await _form(request, settings)
    # request.form() yields Starlette's UploadFile (FastAPI's is a subclass of it, never returned here)
    uploads = [v for v in form.getlist(FILES_FIELD) if isinstance(v, UploadFile)]
    if not uploads:
        raise InvalidRequestError(f"Send one or more files in the multipart field '{FILES_FIELD}' "
                                  f"(e.g. curl -F {FILES_FIELD}=@doc.pdf).", param=FILES_FIELD)
    extra = _metadata(form)
    loaders = importlib.import_module("retriever.loaders")  # parsing lives with the retriever's extra
    names = [_filename(upload) for upload in uploads]
    documents = []
    for upload, name in zip(uploads, names, strict=True):
        data = await upload.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise PayloadTooLargeError(f"File '{name}' is larger than {settings.max_upload_bytes} bytes.",
                                       param=FILES_FIELD)
        doc = await asyncio.to_thread(loaders.load_upload, name, data, upload.content_type,
                                      max_bytes=settings.max_upload_bytes)
        documents.append(doc.model_copy(update={"metadata": {**doc.metadata, **extra}}) if extra else doc)
    return documents


async def _form(request: Request, settings: GatewaySettings) -> FormData:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequestError(f"Send the files as multipart/form-data in the field '{FILES_FIELD}'.",
                                  param=FILES_FIELD)
    try:
        return await request.form(max_files=settings.max_documents_per_request, max_fields=16)
    except StarletteHTTPException as exc:  # Starlette's multipart parser refuses over its limits
        detail = str(exc.detail)
        if "files" in detail.lower():
            raise InvalidRequestError(f"Too many files: at most {settings.max_documents_per_request} per request.",
                                      param=FILES_FIELD, code="too_many_files") from exc
        raise InvalidRequestError(f"The multipart body could not be read: {detail[:200]}",
                                  param=FILES_FIELD) from exc


def _filename(upload: UploadFile) -> str:
    """The part's file name, which becomes the document id: a plain name, never a path."""
    raw = upload.filename or ""
    if not raw.strip():
        raise InvalidRequestError("Every file part needs a file name (it becomes the document id).",
                                  param=FILES_FIELD, code="invalid_filename")
    shown = raw[:80].encode("unicode_escape").decode("ascii")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in raw):
        raise InvalidRequestError(f"File name '{shown}' contains control characters.", param=FILES_FIELD,
                                  code="invalid_filename")
    if len(raw) > MAX_FILENAME_CHARS:
        raise InvalidRequestError(f"File name '{shown}...' is longer than {MAX_FILENAME_CHARS} characters.",
                                  param=FILES_FIELD, code="invalid_filename")
    parts = raw.replace("\\", "/").split("/")
    if any(part in ("..", ".") for part in parts) or raw.startswith(("/", "\\")) or ":" in parts[0]:
        raise InvalidRequestError(f"File name '{shown}' is a path; send a plain file name.", param=FILES_FIELD,
                                  code="invalid_filename")
    if not parts[-1]:
        raise InvalidRequestError(f"File name '{shown}' names a folder, not a file.", param=FILES_FIELD,
                                  code="invalid_filename")
    return parts[-1]


def _metadata(form: FormData) -> dict[str, Any]:
    """The optional ``metadata`` field: a JSON object of strings, numbers, booleans or string lists."""
    raw = form.get(METADATA_FIELD)
    if raw is None:
        return {}
    if not isinstance(raw, str):
        raise InvalidRequestError(f"'{METADATA_FIELD}' must be a text field holding a JSON object.",
                                  param=METADATA_FIELD)
    try:
        return dict(_METADATA.validate_python(json.loads(raw)))
    except (ValueError, ValidationError) as exc:
        raise InvalidRequestError(f"'{METADATA_FIELD}' must be a JSON object of strings, numbers, booleans or "
                                  "lists of strings.", param=METADATA_FIELD) from exc
