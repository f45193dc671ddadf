"""Uploaded files: storing them, and serving them so a browser never runs what they hold.

Files live in the site's file store (``<site>/files/<random key>/<name>``); a file or image
field stores the key. Everything here treats an upload as hostile, because it is served from
the application's own origin, where a page or a script would run with the user's session:

- **Storing.** An image field accepts only a real raster image: Pillow must recognise the
  content (not the name, not the browser's content type) as PNG, JPEG, GIF or WebP and decode
  it whole. SVG is refused (it is XML that may carry script), and so is anything Pillow does
  not decode, and images so large they look like a decompression bomb.
- **Serving.** ``served_as`` decides from the stored *content* again (files stored before
  this check existed are served safely too): a raster image Pillow recognises is sent as its
  own ``image/*`` type and ``inline``; anything else is ``application/octet-stream`` and
  ``attachment``. ``FILE_HEADERS`` go on every file response: ``nosniff`` (the browser keeps
  the type it is given) and a ``sandbox`` CSP (should a file still be rendered as a document,
  it runs no script and has no access to the origin). A polyglot (a valid GIF that is also
  JavaScript) is therefore only ever an image to the browser.
"""
from __future__ import annotations

import io
import secrets
import warnings
from pathlib import Path, PurePosixPath, PureWindowsPath

from PIL import Image, UnidentifiedImageError
from starlette.responses import FileResponse

from core.kernel.errors import N_, Message
from core.kernel.fields import FieldError

MAX_UPLOAD = 20 * 1024 * 1024
# Pillow format -> the only content type a file of it is ever served as
RASTER_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif",
                "WEBP": "image/webp"}
MAX_PIXELS = 50_000_000  # a decompression bomb is refused before it is decoded
SAFE_TYPE = "application/octet-stream"
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, no-cache",
}


def raster_type(data: bytes | Path, *, decode: bool) -> str | None:
    """The ``image/*`` type of a PNG, JPEG, GIF or WebP image, or None for anything else.

    ``decode``: check the whole image (``verify`` and a full decode, for uploads); without
    it only the header is read (serving: cheap, and a header Pillow accepts is enough to
    serve the file as an image, which with ``nosniff`` is all a browser will make of it)."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=list(RASTER_TYPES)) as image:
                kind = image.format
                if image.width * image.height > MAX_PIXELS:
                    return None
                if decode:
                    image.verify()  # checksums and structure (PNG), without decoding
            if decode:  # verify() leaves the image unusable: decode a fresh one whole
                source = io.BytesIO(data) if isinstance(data, bytes) else data
                with Image.open(source, formats=list(RASTER_TYPES)) as image:
                    image.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
            Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None
    return RASTER_TYPES.get(kind)


def safe_name(filename: str) -> str:
    """The last part of a user-chosen name (either slash), at most 100 characters."""
    name = PureWindowsPath(PurePosixPath(filename).name).name[:100]
    return name if name not in ("", ".", "..") else "file"


def store(files_dir: Path, filename: str, data: bytes) -> str:
    """Save bytes under a random key; the key is what a file field stores."""
    key = f"{secrets.token_hex(8)}/{safe_name(filename)}"
    target = files_dir / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return key


def read_upload(upload, *, image: bool, label: str) -> bytes:
    """An upload's bytes, checked: the size, and for an image field that it is a raster
    image (FieldError naming the field ``label`` otherwise)."""
    data = upload.file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise FieldError(Message(N_("is larger than %(size)s MB"), size=MAX_UPLOAD // 2**20))
    if image and raster_type(data, decode=True) is None:
        raise FieldError(Message(
            N_("%(field)s must be a PNG, JPEG, GIF or WebP image; %(file)s is not one "
               "(SVG and other files are not accepted here)."),
            field=label, file=safe_name(upload.filename or "")))
    return data


def served_as(path: Path) -> tuple[str, str]:
    """(content type, disposition) to serve a stored file with: a raster image inline as
    itself, anything else as an opaque download."""
    kind = raster_type(path, decode=False)
    return (kind, "inline") if kind else (SAFE_TYPE, "attachment")


def stored_file(files_dir: Path, key: str | None) -> Path | None:
    """The file a stored key names, inside the store; None for no key, a key that leads
    out of the store, or a file that is gone."""
    store = Path(files_dir).resolve()
    path = (store / (key or "")).resolve()
    return path if key and store in path.parents and path.is_file() else None


def file_response(path: Path, filename: str) -> FileResponse:
    """A stored file for the browser: its type and disposition from its content
    (``served_as``), never from the name, with ``FILE_HEADERS``."""
    media_type, disposition = served_as(path)
    return FileResponse(path, media_type=media_type, filename=filename,
                        content_disposition_type=disposition, headers=FILE_HEADERS)
