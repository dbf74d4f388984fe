"""Case photos: checked by content (JPEG, PNG, WebP; at most 5 MB), stored under var/uploads/ by a random name.

The name a browser gives a file is never used for storage, only in error messages; what a file is
comes from its first bytes, not from its name or the Content-Type the browser claims. Photos are
served back by the case pages, which first check that the user may see the case that owns them.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from flask import current_app, send_file
from werkzeug.datastructures import FileStorage

from gridmgr.errors import InputError, NotFound
from gridmgr.paths import var_dir
from gridmgr.web.i18n import t

MAX_BYTES = 5 * 1024 * 1024
MAX_FILES = 4
# the request limit of a form with photos: every photo at its largest, plus the text fields
MAX_REQUEST = MAX_FILES * MAX_BYTES + 256 * 1024
TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
NAME = re.compile(r"^[0-9a-f]{32}\.(jpg|png|webp)$")
TOO_LARGE = ("照片过大：每张最多 5 MB，每次最多 4 张。", "Photos too large: at most 5 MB each, 4 at a time.")


class UploadError(InputError):
    """A file that is not an acceptable photo (its message names the file)."""


def sniff(head: bytes) -> str | None:
    """The photo type (jpg, png, webp) that a file's first bytes show, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def folder() -> Path:
    """Where photos live: <var>/uploads (GRIDMGR_VAR of the app's settings, else the default var/)."""
    var = current_app.config["GRIDMGR"].get("GRIDMGR_VAR")
    return (Path(var).resolve() if var else var_dir()) / "uploads"


def path_for(name: str) -> Path:
    """The file of a stored photo name (NotFound for anything that is not one of ours)."""
    if not NAME.match(name):
        raise NotFound(t("没有这张照片。", "No such photo."))
    # two-character shards keep a folder from holding millions of files
    return folder() / name[:2] / name


def chosen(files: list[FileStorage]) -> list[FileStorage]:
    """The file inputs that carry a file (a form with nothing chosen still sends an empty part)."""
    return [f for f in files if f is not None and (f.filename or "").strip()]


def check(files: list[FileStorage]) -> list[tuple[str, bytes]]:
    """Read and check every photo before any is stored: [(type, content)], or UploadError."""
    files = chosen(files)
    if len(files) > MAX_FILES:
        raise UploadError(t(f"最多 {MAX_FILES} 张照片。", f"At most {MAX_FILES} photos at a time."), field="photos")
    out = []
    for f in files:
        label = os.path.basename(f.filename or "")[:80]
        data = f.stream.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise UploadError(t(f"照片「{label}」超过 5 MB。", f"Photo '{label}' is larger than 5 MB."), field="photos")
        kind = sniff(data[:16])
        if kind is None:
            raise UploadError(
                t(f"文件「{label}」不是 JPEG、PNG 或 WebP 图片。", f"File '{label}' is not a JPEG, PNG or WebP image."),
                field="photos",
            )
        out.append((kind, data))
    return out


def save(files: list[FileStorage]) -> list[str]:
    """Check the photos, then store them under new random names; returns the names."""
    names = []
    try:
        for kind, data in check(files):
            name = f"{secrets.token_hex(16)}.{kind}"
            path = path_for(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(path)  # a reader never sees half a photo
            names.append(name)
    except BaseException:
        discard(names)
        raise
    return names


def discard(names: list[str]) -> None:
    """Remove stored photos (those of a report or action that was not saved after all)."""
    for name in names:
        try:
            path_for(name).unlink(missing_ok=True)
        except (NotFound, OSError):
            current_app.logger.warning("could not remove upload %s", name)


def send(name: str):
    """The response serving a stored photo: its own type, never sniffed, never cached by a proxy."""
    path = path_for(name)
    if not path.is_file():
        raise NotFound(t("没有这张照片。", "No such photo."))
    response = send_file(path, mimetype=TYPES[name.rsplit(".", 1)[1]], max_age=3600, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.cache_control.private = True
    response.cache_control.public = False
    return response
