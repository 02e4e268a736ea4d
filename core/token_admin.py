"""What the admins of issued secrets share (API tokens in core, feed tokens in generation): made
with the add form and shown once, on the page that answers it (never in a message, which would
keep it in the session or a cookie); never edited or deleted; revoked from a confirmation page,
the row staying on the record.

A subclass names its `manage_permission`, what refuses a revoked token (`refused_by`), and
implements `issue` (saves the token, returns the secret), `revoke` (False when it was revoked
already) and `created_context` (what its "created" page shows beside the secret). Its
templates are admin/<app>/<model>/created.html and revoke.html; the revoke page's URL is
named admin:<app>_<model>_revoke.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

# The secret rides on the saved object from save_model to response_add, and nowhere else.
SECRET = "_secret_shown_once"


def expiry_field(**kwargs) -> forms.DateTimeField:
    """One labelled box with the browser's date-time picker, rather than the admin's split date
    and time boxes, whose inputs no label names (axe: label, critical)."""
    return forms.DateTimeField(
        required=False,
        label="Expires at (optional)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        **kwargs,
    )


class IssuedTokenAdmin(admin.ModelAdmin):
    manage_permission = ""
    refused_by = ""  # "the API", "the feed"
    view_fields: tuple[str, ...] = ()

    def issue(self, request, obj) -> str:
        raise NotImplementedError

    def revoke(self, request, token) -> bool:
        raise NotImplementedError

    def created_context(self, request, obj) -> dict:
        return {}

    # --- who may do what -------------------------------------------------------------------

    def has_manage_permission(self, request) -> bool:
        return request.user.has_perm(self.manage_permission)

    def has_add_permission(self, request) -> bool:
        return self.has_manage_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # made, used, revoked: never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a revoked token stays on the record

    def get_readonly_fields(self, request, obj=None):
        return self.view_fields if obj is not None else ()

    @admin.display(description="Starts with", ordering="prefix")
    def prefix_tag(self, token):
        return format_html("<code>{}…</code>", token.prefix)

    # --- pages -----------------------------------------------------------------------------

    def _template(self, page: str) -> str:
        return f"admin/{self.opts.app_label}/{self.opts.model_name}/{page}.html"

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_revoke"
        return [
            path(
                "<path:object_id>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name=name,
            ),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        token = self.get_object(request, object_id)
        extra_context = {
            "can_revoke": token is not None
            and token.revoked_at is None
            and self.has_manage_permission(request),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        # The answer is the page that shows the secret: nothing to add another from.
        extra_context = {
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            **(extra_context or {}),
        }
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if not change:  # tokens are never changed (has_change_permission)
            setattr(obj, SECRET, self.issue(request, obj))

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(
            request,
            self._template("created"),
            self._context(
                request,
                title=f"{self.opts.verbose_name[:1].upper()}{self.opts.verbose_name[1:]} "
                f"“{obj.name}” created",
                token=obj,
                secret=getattr(obj, SECRET),
                **self.created_context(request, obj),
            ),
        )

    def revoke_view(self, request, object_id):
        if not self.has_manage_permission(request):
            raise PermissionDenied
        token = self.get_object(request, object_id)
        if token is None:
            raise Http404(f"No such {self.opts.verbose_name}.")
        if request.method == "POST" or token.revoked_at is not None:
            self._revoke(request, token)  # says so when it was revoked already
            return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        return TemplateResponse(
            request,
            self._template("revoke"),
            self._context(
                request, title=f"Revoke the {self.opts.verbose_name} “{token.name}”?", token=token
            ),
        )

    def _revoke(self, request, token) -> None:
        if self.revoke(request, token):
            self.log_change(request, token, "Revoked.")
            messages.success(
                request, f"Revoked “{token.name}”: {self.refused_by} refuses it from now on."
            )
        else:
            messages.info(request, f"“{token.name}” was revoked already.")

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}
