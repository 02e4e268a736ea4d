"""The admin's Feeds page: the published feed's URLs per channel, and the tokens that read it.

The page is the feed tokens' list, with the URLs above it. A token is made with the add form
and its secret is shown once, on the page that answers the form (never in a message, which
would keep it in the session or a cookie); it is revoked from its row or its page and stays
on the record. Viewing needs the view permission; making and revoking needs
`generation.manage_feedtokens` (superusers and the Reviewer group, who publish).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from generation.feed_tokens import feed_token_issue, feed_token_revoke
from generation.models import FeedToken
from generation.views import PRESET_PARAM, feed_links

MANAGE = "generation.manage_feedtokens"
# The secret rides on the saved object from save_model to response_add, and nowhere else.
SECRET = "_secret_shown_once"


def token_state(token: FeedToken, now=None) -> str:
    """Active, Expired or Revoked, with since when for the last two."""
    now = now or timezone.now()
    if token.revoked_at is not None:
        return f"Revoked {_when(token.revoked_at)}"
    if token.expires_at is not None and token.expires_at <= now:
        return f"Expired {_when(token.expires_at)}"
    return "Active"


def _when(moment) -> str:
    return date_format(timezone.localtime(moment), "DATE_FORMAT")


class FeedTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "prefix_tag",
        "state_tag",
        "last_used_at",
        "expires_at",
        "made",
        "revoke_link",
    )
    # No filter column: the state column says it, and the list stays within 1400 px.
    search_fields = ("name", "prefix")
    list_select_related = ("created_by",)
    actions = ["revoke_selected"]
    fields = ("name", "expires_at")  # the add form; a token is never edited after
    view_fields = (
        "name",
        "prefix_tag",
        "state_tag",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
    )

    # --- who may do what -----------------------------------------------------------------

    def has_manage_permission(self, request) -> bool:
        return request.user.has_perm(MANAGE)

    def has_add_permission(self, request) -> bool:
        return self.has_manage_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # made, used, revoked: never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a revoked token stays on the record

    def get_list_display(self, request):
        if self.has_manage_permission(request):
            return self.list_display
        return tuple(name for name in self.list_display if name != "revoke_link")

    def get_fields(self, request, obj=None):
        return self.view_fields if obj is not None else self.fields

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "expires_at":
            # One labelled box with the browser's date-time picker, rather than the admin's
            # split date and time boxes, whose inputs no label names (axe: label, critical).
            return forms.DateTimeField(
                required=False,
                label="Expires at (optional)",
                help_text=db_field.help_text,
                input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.view_fields if obj is not None else ()

    # --- columns ---------------------------------------------------------------------------

    @admin.display(description="Starts with", ordering="prefix")
    def prefix_tag(self, token: FeedToken):
        return format_html("<code>{}…</code>", token.prefix)

    @admin.display(description="State")
    def state_tag(self, token: FeedToken) -> str:
        return token_state(token)

    @admin.display(description="Made", ordering="created_at")
    def made(self, token: FeedToken) -> str:
        by = f" by {token.created_by}" if token.created_by else ""
        return f"{_when(token.created_at)}{by}"

    @admin.display(description="Revoke")
    def revoke_link(self, token: FeedToken):
        if token.revoked_at is not None:
            return ""
        return format_html(
            '<a href="{}" aria-label="Revoke {}">Revoke…</a>',
            reverse("admin:generation_feedtoken_revoke", args=[token.pk]),
            token.name,
        )

    # --- pages -----------------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<path:object_id>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name="generation_feedtoken_revoke",
            ),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            "title": "Feeds",
            "feed_links": feed_links(request),
            "preset_param": PRESET_PARAM,
            "legacy_tokens": len(settings.FEED_TOKENS),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

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
            setattr(obj, SECRET, feed_token_issue(token=obj, user=request.user))

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(
            request,
            "admin/generation/feedtoken/created.html",
            self._context(
                request,
                title=f"Feed token “{obj.name}” created",
                token=obj,
                secret=getattr(obj, SECRET),
                feed_links=feed_links(request)[:1],
            ),
        )

    def revoke_view(self, request, object_id):
        if not self.has_manage_permission(request):
            raise PermissionDenied
        token = self.get_object(request, object_id)
        if token is None:
            raise Http404("No such feed token.")
        if request.method == "POST" or token.revoked_at is not None:
            self._revoke(request, token)  # says so when it was revoked already
            return redirect("admin:generation_feedtoken_changelist")
        return TemplateResponse(
            request,
            "admin/generation/feedtoken/revoke.html",
            self._context(request, title=f"Revoke the feed token “{token.name}”?", token=token),
        )

    @admin.action(description="Revoke the selected tokens", permissions=["manage"])
    def revoke_selected(self, request, queryset):
        for token in queryset:
            self._revoke(request, token)

    def _revoke(self, request, token: FeedToken) -> None:
        if feed_token_revoke(token=token, user=request.user):
            self.log_change(request, token, "Revoked.")
            messages.success(request, f"Revoked “{token.name}”: the feed refuses it from now on.")
        else:
            messages.info(request, f"“{token.name}” was revoked already.")

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}
