"""Webhooks in the admin: endpoints (added with their secret shown once, on the page that
answers the form; disabled and enabled from the list), and the delivery log, overall or per
endpoint, with every attempt's response code and a "Send again" action."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from core.display import short_text, short_time
from hooks.delivery import deliveries_resume, delivery_send_again
from hooks.endpoints import (
    EndpointRefused,
    endpoint_disable,
    endpoint_enable,
    events_clean,
    secret_generate,
    url_refusal,
)
from hooks.models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint

# The secret rides on the saved object from save_model to response_add, and nowhere else.
SECRET = "_secret_shown_once"


class EndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "events", "description", "owner")

    def clean_url(self):
        url = self.cleaned_data["url"]
        refusal = url_refusal(url)
        if refusal:
            raise forms.ValidationError(refusal)
        return url

    def clean_events(self):
        try:
            return events_clean(self.cleaned_data["events"])
        except EndpointRefused as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = (
        "url",
        "event_list",
        "owner",
        "is_active",
        "disabled_at",
        "failed_in_a_row",
        "deliveries_link",
        "created_at",
    )
    list_filter = ("is_active",)
    search_fields = ("url", "description")
    list_select_related = ("owner",)
    readonly_fields = ("is_active", "disabled_at", "disabled_reason", "failed_in_a_row")
    actions = ("disable_endpoints", "enable_endpoints")

    @admin.display(description="events")
    def event_list(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events)

    @admin.display(description="deliveries")
    def deliveries_link(self, endpoint: WebhookEndpoint) -> str:
        url = reverse("admin:hooks_webhookdelivery_changelist")
        return format_html('<a href="{}?endpoint__id__exact={}">Log</a>', url, endpoint.pk)

    def add_view(self, request, form_url="", extra_context=None):
        # The answer is the page that shows the secret: nothing to add another from.
        extra_context = {
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            **(extra_context or {}),
        }
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.secret = secret_generate()
            setattr(obj, SECRET, obj.secret)
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(
            request,
            "admin/hooks/webhookendpoint/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Webhook endpoint {obj.url} added",
                "endpoint": obj,
                "secret": getattr(obj, SECRET),
            },
        )

    @admin.action(description="Disable the selected endpoints", permissions=["change"])
    def disable_endpoints(self, request, queryset):
        done = sum(
            endpoint_disable(endpoint=e, reason=f"Disabled by {request.user.get_username()}.")
            for e in queryset
        )
        self.message_user(request, f"Disabled {done} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Enable the selected endpoints", permissions=["change"])
    def enable_endpoints(self, request, queryset):
        enabled = [e for e in queryset if endpoint_enable(endpoint=e)]
        waiting = sum(deliveries_resume(endpoint=e) for e in enabled)
        self.message_user(
            request,
            f"Enabled {len(enabled)} endpoint(s); {waiting} waiting "
            f"deliver{'y' if waiting == 1 else 'ies'} queued.",
            messages.SUCCESS,
        )


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("started_at", "status_code", "duration_ms", "error", "response", "worker")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "message_id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_response_short",
        "next_attempt",
        "delivered_at",
        "failed_at",
    )
    list_filter = ("status", "event__event_type", "endpoint")
    search_fields = ("message_id", "endpoint__url")
    list_select_related = ("event", "endpoint")
    readonly_fields = (
        "message_id",
        "event",
        "payload",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_response",
        "delivered_at",
        "failed_at",
        "created_at",
    )
    fields = readonly_fields
    inlines = (AttemptInline,)
    actions = ("send_again",)
    change_form_template = "admin/hooks/webhookdelivery/change_form.html"

    @admin.display(description="event", ordering="event__event_type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.event_type

    @admin.display(description="last answer")
    def last_response_short(self, delivery: WebhookDelivery) -> str:
        return short_text(delivery.last_response, 28)

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_attempt(self, delivery: WebhookDelivery):
        return short_time(delivery.next_attempt_at) if delivery.next_attempt_at else "—"

    @admin.display(description="payload")
    def payload(self, delivery: WebhookDelivery) -> str:
        return format_html("<pre>{}</pre>", delivery.event.body())

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Send again (same webhook-id)", permissions=["change"])
    def send_again(self, request, queryset):
        done = sum(delivery_send_again(delivery=d) for d in queryset)
        self.message_user(
            request,
            f"Queued {done} deliver{'y' if done == 1 else 'ies'} again, each with its webhook-id.",
            messages.SUCCESS,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST" and "_send_again" in request.POST:
            delivery = self.get_object(request, object_id)
            if delivery is None or not self.has_change_permission(request, delivery):
                return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
            if delivery_send_again(delivery=delivery):
                self.message_user(request, f"Queued {delivery} again.", messages.SUCCESS)
            else:
                self.message_user(request, f"{delivery} is being sent now.", messages.WARNING)
            return self.response_post_save_change(request, delivery)
        return super().change_view(request, object_id, form_url, extra_context)
