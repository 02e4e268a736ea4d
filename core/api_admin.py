"""The admin's API tokens: list, make (the token shown once, on the page that answers the form,
never in a message, which would keep it in the session or a cookie), revoke (the row stays).

Making and revoking needs `core.manage_apitokens`. A token acts as its owner: only a superuser
may make one for someone else, so nobody makes a token stronger than themselves.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

from core.api_tokens import api_token_issue, api_token_revoke
from core.models import ApiScope, ApiToken

MANAGE = "core.manage_apitokens"
# The secret rides on the saved object from save_model to response_add, and nowhere else.
SECRET = "_secret_shown_once"


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="What it may do; it never does more than its owner may.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at (optional)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    class Meta:
        model = ApiToken
        fields = ("name", "owner", "scopes", "expires_at")


class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ("name", "prefix_tag", "owner", "scope_list", "state", "last_used_at")
    search_fields = ("name", "prefix", "owner__username")
    list_select_related = ("owner",)
    view_fields = (
        "name",
        "prefix_tag",
        "owner",
        "scope_list",
        "state",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm(MANAGE)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # made, used, revoked: never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a revoked token stays on the record

    def get_fields(self, request, obj=None):
        if obj is not None:
            return self.view_fields
        fields = ("name", "owner", "scopes", "expires_at")
        return fields if request.user.is_superuser else tuple(f for f in fields if f != "owner")

    def get_readonly_fields(self, request, obj=None):
        return self.view_fields if obj is not None else ()

    @admin.display(description="Starts with", ordering="prefix")
    def prefix_tag(self, token: ApiToken):
        return format_html("<code>{}…</code>", token.prefix)

    @admin.display(description="Scopes")
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes)

    @admin.display(description="State")
    def state(self, token: ApiToken) -> str:
        if token.revoked_at is not None:
            return "Revoked"
        if token.expires_at is not None and token.expires_at <= timezone.now():
            return "Expired"
        return "Active"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name="core_apitoken_revoke",
            ),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        token = self.get_object(request, object_id)
        can_revoke = token is not None and token.revoked_at is None
        extra_context = {
            "can_revoke": can_revoke and request.user.has_perm(MANAGE),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        extra_context = {
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            **(extra_context or {}),
        }
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            return  # tokens are never changed (has_change_permission)
        if not request.user.is_superuser or obj.owner_id is None:
            obj.owner = request.user
        setattr(obj, SECRET, api_token_issue(token=obj))

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(
            request,
            "admin/core/apitoken/created.html",
            self._context(
                request,
                title=f"API token “{obj.name}” created",
                token=obj,
                secret=getattr(obj, SECRET),
                products_url=request.build_absolute_uri("/api/v1/products"),
            ),
        )

    def revoke_view(self, request, object_id):
        if not request.user.has_perm(MANAGE):
            raise PermissionDenied
        token = self.get_object(request, object_id)
        if token is None:
            raise Http404("No such API token.")
        if request.method == "POST" or token.revoked_at is not None:
            if api_token_revoke(token=token):
                self.log_change(request, token, "Revoked.")
                messages.success(
                    request, f"Revoked “{token.name}”: the API refuses it from now on."
                )
            else:
                messages.info(request, f"“{token.name}” was revoked already.")
            return redirect("admin:core_apitoken_changelist")
        return TemplateResponse(
            request,
            "admin/core/apitoken/revoke.html",
            self._context(request, title=f"Revoke the API token “{token.name}”?", token=token),
        )

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}
