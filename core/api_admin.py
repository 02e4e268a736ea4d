"""The admin's API tokens: list, make (the token shown once, on the page that answers the form,
never in a message, which would keep it in the session or a cookie), revoke (the row stays).

Making and revoking needs `core.manage_apitokens`. A token acts as its owner: only a superuser
may make one for someone else, so nobody makes a token stronger than themselves.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils import timezone

from core.api_tokens import api_token_issue, api_token_revoke
from core.models import ApiScope, ApiToken
from core.token_admin import IssuedTokenAdmin, expiry_field

MANAGE = "core.manage_apitokens"


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="What it may do; it never does more than its owner may.",
    )
    expires_at = expiry_field()

    class Meta:
        model = ApiToken
        fields = ("name", "owner", "scopes", "expires_at")


class ApiTokenAdmin(IssuedTokenAdmin):
    manage_permission = MANAGE
    refused_by = "the API"
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

    def get_fields(self, request, obj=None):
        if obj is not None:
            return self.view_fields
        fields = ("name", "owner", "scopes", "expires_at")
        return fields if request.user.is_superuser else tuple(f for f in fields if f != "owner")

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

    def issue(self, request, obj) -> str:
        if not request.user.is_superuser or obj.owner_id is None:
            obj.owner = request.user
        return api_token_issue(token=obj)

    def revoke(self, request, token) -> bool:
        return api_token_revoke(token=token)

    def created_context(self, request, obj) -> dict:
        return {"products_url": request.build_absolute_uri("/api/v1/products")}
