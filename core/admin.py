"""The spending ledger in the admin: read-only, as provenance is."""

from decimal import Decimal

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, User
from django.db import models
from django.db.models import Sum
from django.utils.html import format_html

from core.api_admin import ApiTokenAdmin
from core.display import short_text, short_time
from core.forms import IdsChoiceField
from core.models import (
    ApiToken,
    MonthlySpend,
    ProviderCall,
    SpendReconcile,
    SpendReservation,
)
from core.view_only import ViewOnlyMixin


class ReadOnlyAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """Provenance rows; lists show long text cut and times short (core.display), so every list
    fits a 1400 px window; each row's page has the whole of it."""

    @admin.display(description="when", ordering="created_at")
    def created(self, row):
        return short_time(row.created_at)

    @admin.display(description="about", ordering="subject")
    def subject_short(self, row):
        return short_text(row.subject, 28)

    @admin.display(description="note")
    def note_short(self, row):
        return short_text(row.note, 28)


@admin.register(MonthlySpend)
class MonthlySpendAdmin(ReadOnlyAdmin):
    list_display = ("month", "spent", "unattributed", "reserved", "in_doubt", "cap", "updated")

    @admin.display(description="of which unattributed provider spend")
    def unattributed(self, month: MonthlySpend) -> Decimal:
        calls = month.calls.filter(kind=ProviderCall.Kind.UNATTRIBUTED)
        return calls.aggregate(total=Sum("cost"))["total"] or Decimal("0")

    @admin.display(description="reserved (calls in flight or unsettled)")
    def reserved(self, month: MonthlySpend) -> Decimal:
        total = month.reservations.aggregate(total=Sum("amount"))["total"] or Decimal("0")
        return total.quantize(Decimal("0.000001"))  # SQLite sums decimals as floats

    @admin.display(description="calls in doubt")
    def in_doubt(self, month: MonthlySpend) -> int:
        return month.reservations.filter(in_doubt=True).count()

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, month: MonthlySpend):
        return short_time(month.updated_at)

    @admin.display(description="monthly cap")
    def cap(self, month: MonthlySpend) -> str:
        return f"${settings.MONTHLY_SPENDING_CAP}" if settings.MONTHLY_SPENDING_CAP else "none"


class OutcomeFilter(admin.SimpleListFilter):
    """Paid answers that were used, or paid for and then rejected (no image, malformed)."""

    title = "answer"
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [("used", "Used"), ("rejected", "Paid for, then rejected")]

    def queryset(self, request, queryset):
        if self.value() == "used":
            return queryset.filter(rejected_reason="")
        if self.value() == "rejected":
            return queryset.exclude(rejected_reason="")
        return queryset


@admin.register(ProviderCall)
class ProviderCallAdmin(ReadOnlyAdmin):
    # The reservation and the provider's generation id are on each call's page (and searched).
    list_display = (
        "created",
        "kind",
        "subject_short",
        "model_short",
        "cost_shown",
        "rejected_short",
    )
    list_filter = ("kind", OutcomeFilter, "cost_source", "month")
    search_fields = ("subject", "key", "generation_id", "rejected_reason")
    date_hierarchy = "created_at"

    @admin.display(description="model", ordering="model")
    def model_short(self, call: ProviderCall):
        return short_text(call.model, 28)

    @admin.display(description="cost (USD)", ordering="cost")
    def cost_shown(self, call: ProviderCall):
        provider = "—" if call.provider_cost is None else f"{call.provider_cost:.6f}"
        return format_html(
            "{}<br><small>{}; the provider says {}</small>", call.cost, call.cost_source, provider
        )

    @admin.display(description="not used because")
    def rejected_short(self, call: ProviderCall):
        return short_text(call.rejected_reason, 32)


@admin.register(SpendReservation)
class SpendReservationAdmin(ReadOnlyAdmin):
    list_display = (
        "created",
        "subject_short",
        "owner_short",
        "amount",
        "expires",
        "in_doubt",
        "note_short",
    )
    list_filter = ("in_doubt",)

    @admin.display(description="owner", ordering="owner")
    def owner_short(self, reservation: SpendReservation):
        return short_text(reservation.owner, 24)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, reservation: SpendReservation):
        return short_time(reservation.expires_at)


@admin.register(SpendReconcile)
class SpendReconcileAdmin(ReadOnlyAdmin):
    # The baseline is on each row's page; the two generation counts share a column.
    list_display = (
        "created",
        "key_usage",
        "attributed",
        "pending",
        "unattributed",
        "booked",
        "settled",
        "generations",
        "note_short",
        "error_short",
    )

    @admin.display(description="generations checked / differing")
    def generations(self, reconcile: SpendReconcile) -> str:
        return f"{reconcile.generations_checked} / {reconcile.generations_differing}"

    @admin.display(description="error")
    def error_short(self, reconcile: SpendReconcile):
        return short_text(reconcile.error, 28)


admin.site.register(ApiToken, ApiTokenAdmin)


# Django's own user and group pages, with many-to-many fields (groups, permissions) that refuse
# a crafted id in the form instead of overflowing the database (core.forms).
ID_FIELDS = {models.ManyToManyField: {"form_class": IdsChoiceField}}


class UserAdmin(auth_admin.UserAdmin):
    formfield_overrides = ID_FIELDS


class GroupAdmin(auth_admin.GroupAdmin):
    formfield_overrides = ID_FIELDS


for _model, _model_admin in ((User, UserAdmin), (Group, GroupAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, _model_admin)


class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    """axes' page of locked and counted logins. Its own "Clean up expired attempts" action reads
    the time axes puts on a login request only, and answered 500 from this page."""

    @admin.action(description="Clean up expired attempts")
    def cleanup_expired_attempts(self, request, queryset):
        request.axes_attempt_time = None  # axes then counts the cool-off back from now
        super().cleanup_expired_attempts(request, queryset)


admin.site.register(AccessAttempt, AccessAttemptAdmin)
admin.site.register(AccessLog, axes_admin.AccessLogAdmin)
admin.site.register(AccessFailureLog, axes_admin.AccessFailureLogAdmin)
