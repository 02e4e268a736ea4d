"""Stored files over HTTP: private ones to staff only, published ones to anyone.

`private_media` answers /media/<name> (what FieldFile.url points at with local storage) for a
logged-in staff user holding the view permission of the file's folder; everything else gets a
404, so nobody learns which names exist. `public_file` sends a file to anyone; the caller
decides that the file is public. Local files are streamed; on S3 the answer is a redirect to a
fresh signed URL that expires within minutes.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect

# The longest file name (one path part) file systems and S3 keys allow, in bytes.
NAME_MAX_BYTES = 255


def private_media(
    request: HttpRequest, name: str, *, permissions: Mapping[str, str]
) -> HttpResponse:
    """A stored file for staff: `permissions` maps a top folder to the permission it needs."""
    folder = name.split("/", 1)[0]
    permission = permissions.get(folder)
    user = request.user
    if (
        permission is None
        or not user.is_authenticated
        or not user.is_staff
        or not user.has_perm(permission)
        or ".." in name.split("/")
    ):
        raise Http404
    response = stored_file(name)
    response["Cache-Control"] = "private, max-age=300"
    return response


def stored_file(name: str) -> HttpResponse:
    """The file itself (local storage) or a redirect to a short-lived signed URL (S3)."""
    if "\x00" in name or any(len(part.encode()) > NAME_MAX_BYTES for part in name.split("/")):
        raise Http404  # no stored file has such a name; the file system would refuse to look
    try:
        path = default_storage.path(name)
    except NotImplementedError:  # remote storage: its url() is signed and short-lived
        if not default_storage.exists(name):
            raise Http404 from None
        return HttpResponseRedirect(default_storage.url(name))
    try:
        handle = open(path, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise Http404 from None
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(handle, content_type=content_type)
