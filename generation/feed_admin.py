"""The admin's Feeds page: the published feed's URLs per channel, and the tokens that read it.

The page is the feed tokens' list, with the URLs above it. A token is made with the add form
and its secret is shown once, on the page that answers the form (never in a message, which
would keep it in the session or a cookie); it is revoked from its row or its page and stays
on the record. Viewing needs the view permission; making and revoking needs
`generation.manage_feedtokens` (superusers and the Reviewer group, who publish).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from core.token_admin import IssuedTokenAdmin, expiry_field
from generation.feed_tokens import feed_token_issue, feed_token_revoke
from generation.models import FeedToken
from generation.views import PRESET_PARAM, feed_links

MANAGE = "generation.manage_feedtokens"


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


class FeedTokenAdmin(IssuedTokenAdmin):
    manage_permission = MANAGE
    refused_by = "the feed"
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

    def get_list_display(self, request):
        if self.has_manage_permission(request):
            return self.list_display
        return tuple(name for name in self.list_display if name != "revoke_link")

    def get_fields(self, request, obj=None):
        return self.view_fields if obj is not None else self.fields

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "expires_at":
            return expiry_field(help_text=db_field.help_text)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    # --- columns ---------------------------------------------------------------------------

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

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            "title": "Feeds",
            "feed_links": feed_links(request),
            "preset_param": PRESET_PARAM,
            "legacy_tokens": len(settings.FEED_TOKENS),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    def issue(self, request, obj) -> str:
        return feed_token_issue(token=obj, user=request.user)

    def revoke(self, request, token) -> bool:
        return feed_token_revoke(token=token, user=request.user)

    def created_context(self, request, obj) -> dict:
        return {"feed_links": feed_links(request)[:1]}

    @admin.action(description="Revoke the selected tokens", permissions=["manage"])
    def revoke_selected(self, request, queryset):
        for token in queryset:
            self._revoke(request, token)
