"""The import pages of the admin: upload, the import's own page (progress, preview, confirm,
cancel, error report) and *Products → Imports*. Every request stores or reads a record and
returns; the work is a job (catalog.importer.jobs)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from catalog.importer import ImageSourceError, ImportKind, ZipImages
from catalog.importer.formats import KEPT_ERRORS
from catalog.importer.jobs import (
    import_job_cancel,
    import_job_confirm,
    import_job_create,
    import_job_create_from_slices,
    job_preview,
    job_progress,
    job_summary,
    report_name,
)
from catalog.models import CatalogImport
from catalog.upload_slices import (
    FILES,
    UploadRefused,
    upload_get,
    upload_slice_store,
    upload_start,
)
from core.display import short_text, short_time
from core.view_only import ViewOnlyMixin

State = CatalogImport.State


class CatalogImportForm(forms.Form):
    csv_file = forms.FileField(
        label="CSV file",
        help_text="Historical catalog, new products or a sales update (sku, sales_count).",
    )
    images_zip = forms.FileField(
        label="Images (ZIP)",
        required=False,
        help_text="A ZIP of the images named in image_path. Not needed for a sales update.",
    )
    kind = forms.ChoiceField(
        label="Format",
        required=False,
        choices=[("", "Detect from the header")] + list(ImportKind.choices),
    )

    def clean_images_zip(self):
        """A file that is not a ZIP at all is refused at once (reading its directory is quick);
        what is inside is the check's business."""
        upload = self.cleaned_data.get("images_zip")
        if upload is not None:
            try:
                ZipImages(upload)
            except ImageSourceError as exc:
                raise forms.ValidationError(str(exc)) from None
            finally:
                upload.seek(0)
        return upload


def may_decide(request, job: CatalogImport) -> bool:
    """Only the person who uploaded the files (or a superuser) confirms or cancels them."""
    return request.user.is_superuser or job.requested_by_id == request.user.pk


class ImportViews:
    """The import pages, mixed into the product admin (their URLs live under its own)."""

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm("catalog.import_products")

    def import_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="catalog_product_import"),
            path(
                "import/uploads/",
                view(require_POST(self.upload_start_view)),
                name="catalog_product_import_upload",
            ),
            path(
                "import/uploads/<str:token>/finish/",
                view(require_POST(self.upload_finish_view)),
                name="catalog_product_import_upload_finish",
            ),
            path(
                "import/uploads/<str:token>/<str:field>/<int:index>/",
                view(require_POST(self.upload_slice_view)),
                name="catalog_product_import_upload_slice",
            ),
        ]

    def import_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = CatalogImportForm(request.POST or None, request.FILES or None)
        if refused := getattr(request, "upload_refused", None):  # stopped while it arrived
            messages.error(request, f"Nothing was stored. {refused}")
            form = CatalogImportForm()
        elif request.method == "POST" and form.is_valid():
            job = import_job_create(
                user=request.user,
                csv_file=form.cleaned_data["csv_file"],
                zip_file=form.cleaned_data["images_zip"],
                kind=form.cleaned_data["kind"],
                check_small_now=True,
            )
            return redirect(job_url(job))
        return TemplateResponse(
            request,
            "admin/catalog/product/import.html",
            self._context(request, form=form, title="Import catalog CSV"),
        )

    # --- the same upload in slices, sent by catalog/static/catalog/import-upload.js ----------

    def _may_upload(self, request) -> None:
        if not self.has_import_permission(request):
            raise PermissionDenied

    def upload_start_view(self, request):
        """Declare the files (name and size of each); answers the slice size and the URLs."""
        try:
            self._may_upload(request)
            files = {
                field: (request.POST[f"{field}_name"], _size(request.POST.get(f"{field}_size")))
                for field in FILES
                if request.POST.get(f"{field}_name")
            }
            upload = upload_start(user=request.user, files=files, kind=request.POST.get("kind", ""))
        except UploadRefused as exc:
            return refusal(exc)
        base = reverse("admin:catalog_product_import_upload")
        return JsonResponse(
            {
                "token": upload.token,
                "slice_bytes": upload.slice_bytes,
                "upload_url": f"{base}{upload.token}/",
                "finish_url": reverse(
                    "admin:catalog_product_import_upload_finish", args=[upload.token]
                ),
            },
            status=201,
        )

    def upload_slice_view(self, request, token: str, field: str, index: int):
        """One slice, the request's body as it is (application/octet-stream)."""
        try:
            self._may_upload(request)
            if request.content_type != "application/octet-stream":
                raise UploadRefused("Send a slice as application/octet-stream.")
            length = request.META.get("CONTENT_LENGTH")
            received = upload_slice_store(
                upload=upload_get(token=token, user=request.user),
                field=field,
                index=index,
                body=request,
                length=int(length) if length and length.isdigit() else None,
            )
        except UploadRefused as exc:
            return refusal(exc)
        return JsonResponse({"received": received})

    def upload_finish_view(self, request, token: str):
        """Every slice is there: the import job, as the form makes it; answers its page."""
        try:
            self._may_upload(request)
            job = import_job_create_from_slices(user=request.user, token=token)
        except UploadRefused as exc:
            return refusal(exc)
        return JsonResponse({"job": job.pk, "url": job_url(job)})


def _size(value: str | None) -> int:
    if not (value or "").isdigit():
        raise UploadRefused("A file's size must be given in bytes.")
    return int(value)


def refusal(exc: UploadRefused) -> JsonResponse:
    return JsonResponse({"error": str(exc)}, status=exc.status)


def preview_photo_urls(job: CatalogImport, rows: list[dict]) -> None:
    """Each shown row's thumbnail, served like every private photo (behind the login), while
    the photo is surely stored: the check keeps it until the import is confirmed, and a done
    import's products use it. Once an import is cancelled, expired or failed, photos no
    product uses are deleted, so there are none to show."""
    if job.state not in (State.CHECKED, State.DONE):
        return
    for row in rows:
        if row.get("thumbnail"):
            row["thumbnail_url"] = default_storage.url(row["thumbnail"])


def already_decided(job: CatalogImport) -> str:
    """What a confirmation that came second hears."""
    if job.state in (State.CONFIRMED, State.WRITING, State.DONE):
        return (
            f"Import {job.pk} is not waiting for a confirmation any more: it is already "
            "confirmed, and is written once."
        )
    return "This import is not waiting for a confirmation any more."


def job_url(job: CatalogImport) -> str:
    return reverse("admin:catalog_catalogimport_change", args=[job.pk])


@admin.register(CatalogImport)
class CatalogImportAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """*Products → Imports*: every import, who ran it, how it went; each opens its page."""

    # The four row counts share a column, so the list fits a 1400 px window.
    list_display = (
        "id",
        "started",
        "requested_by",
        "page_link",
        "format_shown",
        "state",
        "rows",
        "duration_shown",
        "error_report",
    )
    list_display_links = None
    list_filter = ("state", "kind")
    search_fields = ("csv_name", "requested_by__username")
    list_select_related = ("requested_by",)
    actions = ["cancel_imports"]

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("catalog.import_products") or super().has_view_permission(
            request, obj
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:job_id>/progress.json",
                view(self.progress_view),
                name="catalog_import_progress",
            ),
            path("<int:job_id>/errors.csv", view(self.errors_view), name="catalog_import_errors"),
        ] + super().get_urls()

    def _job(self, request, job_id) -> CatalogImport:
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            return CatalogImport.objects.select_related("requested_by").get(pk=int(job_id))
        except (ValueError, OverflowError, CatalogImport.DoesNotExist):
            raise Http404("No such import.") from None

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The import's page: progress while it runs, then its preview or its outcome."""
        job = self._job(request, object_id)
        if request.method == "POST":
            return self._decide(request, job)
        preview = job_preview(job) if job.state not in CatalogImport.RUNNING else None
        if preview is not None:
            preview_photo_urls(job, preview["rows"])
        return TemplateResponse(
            request,
            "admin/catalog/product/import_job.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "job": job,
                "progress": job_progress(job),
                "preview": preview,
                "errors_not_shown": max(min(job.errors, KEPT_ERRORS) - len(preview["errors"]), 0)
                if preview
                else 0,
                "errors_not_kept": max(job.errors - KEPT_ERRORS, 0),
                "errors_kept": KEPT_ERRORS,
                "preview_photos": preview is not None
                and any(row.get("photo") for row in preview["rows"]),
                "summary": job_summary(job),
                "may_decide": may_decide(request, job),
                "has_error_report": default_storage.exists(report_name(job, "errors.csv")),
                "title": f"Import {job.pk}: {job.csv_name}",
            },
        )

    def _decide(self, request, job: CatalogImport):
        if not may_decide(request, job):
            raise PermissionDenied
        action = request.POST.get("action")
        if action == "confirm":
            if import_job_confirm(job=job):
                messages.success(request, f"Import {job.pk} is queued to be written.")
            else:  # confirmed twice (two tabs, a double click): the other one won
                job.refresh_from_db()
                messages.warning(request, already_decided(job))
        elif action == "cancel":
            if import_job_cancel(job=job):
                messages.success(request, f"Import {job.pk} is being cancelled.")
            else:
                messages.error(request, "This import has finished already.")
        return redirect(job_url(job))

    def progress_view(self, request, job_id: int):
        return JsonResponse(job_progress(self._job(request, job_id)))

    def errors_view(self, request, job_id: int):
        job = self._job(request, job_id)
        name = report_name(job, "errors.csv")
        if not default_storage.exists(name):
            raise Http404("This import has no error report.")
        return FileResponse(
            default_storage.open(name, "rb"),
            as_attachment=True,
            filename=f"import-{job.pk}-errors.csv",
            content_type="text/csv",
        )

    @admin.display(description="started", ordering="created_at")
    def started(self, job: CatalogImport):
        return short_time(job.created_at)

    @admin.display(description="file", ordering="csv_name")
    def page_link(self, job: CatalogImport):
        return format_html('<a href="{}">{}</a>', job_url(job), short_text(job.csv_name, 32))

    @admin.display(description="format", ordering="kind")
    def format_shown(self, job: CatalogImport) -> str:
        return job.kind_label

    @admin.display(description="rows")
    def rows(self, job: CatalogImport):
        return format_html(
            "{} created, {} updated<br><small>{} unchanged, {} failed</small>",
            job.created,
            job.updated,
            job.unchanged,
            job.failed,
        )

    @admin.display(description="duration")
    def duration_shown(self, job: CatalogImport) -> str:
        if job.duration is None:
            return "—"
        seconds = int(job.duration.total_seconds())
        return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"

    @admin.display(description="errors")
    def error_report(self, job: CatalogImport):
        if not job.errors:
            return "—"
        return format_html(
            '<a href="{}">{} (CSV)</a>',
            reverse("admin:catalog_import_errors", args=[job.pk]),
            job.errors,
        )

    @admin.action(description="Cancel the selected imports (what was written stays)")
    def cancel_imports(self, request, queryset):
        cancelled = 0
        for job in queryset:
            if may_decide(request, job) and import_job_cancel(job=job):
                cancelled += 1
        self.message_user(request, f"{cancelled} import(s) cancelled or stopping.")
