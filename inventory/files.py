"""Uploaded files (product photos, certificate scans): checked for what they claim to be and stored
under the instance folder with a name and extension chosen here, never the uploader's."""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from .audit import record
from .errors import ValidationError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}


def _check_size(data: bytes, field: str) -> None:
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ValidationError(_l("文件是空的"), field)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(_l("文件不能超过 5 MB"), field)


def image_extension(data: bytes, *, field: str = "photo") -> str:
    """The extension of a JPEG, PNG, GIF or WebP image that Pillow can read whole; otherwise a
    ValidationError."""
    _check_size(data, field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ValidationError(_l("图片太大（像素过多）"), field)
                image.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # verify() does not decode JPEG data; a truncated file fails here
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError):
        raise ValidationError(_l("文件不是可以打开的图片（JPG、PNG、GIF 或 WebP）"), field) from None
    if fmt not in IMAGE_FORMATS:
        raise ValidationError(_l("图片只能是 JPG、PNG、GIF 或 WebP 格式"), field)
    return IMAGE_FORMATS[fmt]


def scan_extension(data: bytes, *, field: str = "scan") -> str:
    """A certificate scan: a PDF, or a JPEG or PNG image."""
    _check_size(data, field)
    if bytes(data[:5]) == b"%PDF-":
        if b"%%EOF" not in bytes(data[-2048:]):
            raise ValidationError(_l("PDF 文件不完整，请重新扫描或导出"), field)
        return "pdf"
    try:
        ext = image_extension(data, field=field)
    except ValidationError:
        raise ValidationError(_l("扫描件只能是 PDF 或图片（JPG、PNG）"), field) from None
    if ext not in ("jpg", "png"):
        raise ValidationError(_l("扫描件只能是 PDF 或图片（JPG、PNG）"), field)
    return ext


def store(instance_path: str | os.PathLike, folder: str, stem: str, ext: str, data: bytes) -> str:
    """Write ``data`` to instance/uploads/<folder>/<stem>-<hash>.<ext>; return the path relative to
    the instance folder (what the database keeps). The same content gives the same name."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    relative = Path("uploads") / folder / f"{stem}-{digest}.{ext}"
    target = Path(instance_path) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(bytes(data))
    os.replace(tmp, target)
    return relative.as_posix()


def attach(s: Session, owner: Any, attr: str, *, folder: str, ext: str, data: bytes,
           instance_path: str | os.PathLike, filename: str, actor_id: Optional[int], action: str,
           entity: str) -> str:
    """Keep an uploaded file for ``owner`` (a product's photo, a certificate's scan): stored under
    instance/uploads/<folder>/, ``owner.<attr>`` pointed at it, the change audited. Returns the
    path relative to the instance folder."""
    path = store(instance_path, folder, str(owner.id), ext, data)
    old = getattr(owner, attr)
    setattr(owner, attr, path)
    record(s, user_id=actor_id, action=action, entity=entity, entity_id=owner.id,
           before={attr: old}, after={attr: path, "filename": (filename or "")[:120]})
    s.flush()
    return path
