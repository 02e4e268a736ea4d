"""Upload limits applied while a request is still arriving, before anything is stored.

Django writes an upload to memory or a temporary file as it comes in and lets a form look at
its size only afterwards. This handler, first in FILE_UPLOAD_HANDLERS, stops reading a file as
soon as it passes its field's limit (or at once, when the request says it is larger than any
upload may be) and leaves the reason on the request for the view to show.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload


def upload_limits() -> dict[str, int]:
    """Bytes allowed per form field that takes a file."""
    return {
        "csv_file": settings.CATALOG_IMPORT_MAX_CSV_BYTES,
        "images_zip": settings.CATALOG_IMPORT_MAX_ZIP_BYTES,
        "image": settings.CATALOG_IMAGE_MAX_BYTES,
    }


def too_large(file_name: str, limit: int) -> str:
    """Why a file over its field's limit is refused (a form upload or one in slices)."""
    return (
        f"{file_name} is larger than {limit:,} bytes, the limit for this field; nothing was stored."
    )


class UploadLimitHandler(FileUploadHandler):
    SLACK = 1024 * 1024  # the form's other fields and the multipart framing

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.content_length = content_length
        return None  # the other handlers do the work

    def new_file(self, field_name, *args, **kwargs):
        super().new_file(field_name, *args, **kwargs)
        limits = upload_limits()
        self.limit = limits.get(field_name, max(limits.values()))
        self.received = 0
        largest_request = sum(limits.values()) + self.SLACK
        if (self.content_length or 0) > largest_request:
            self._refuse(
                f"The upload is {self.content_length:,} bytes; the largest accepted is "
                f"{largest_request:,} bytes."
            )

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self._refuse(too_large(self.file_name, self.limit))
        return raw_data

    def file_complete(self, file_size):
        return None

    def _refuse(self, reason: str):
        if self.request is not None:
            self.request.upload_refused = reason
        raise StopUpload(connection_reset=True)
