"""The spending ledger in the admin: read-only, as provenance is."""

from decimal import Decimal

from django.conf import settings
from django.contrib import admin
from django.db.models import Sum

from core.models import MonthlySpend, ProviderCall, SpendReconcile, SpendReservation


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MonthlySpend)
class MonthlySpendAdmin(ReadOnlyAdmin):
    list_display = ("month", "spent", "unattributed", "reserved", "in_doubt", "cap", "updated_at")

    @admin.display(description="of which unattributed provider spend")
    def unattributed(self, month: MonthlySpend) -> Decimal:
        calls = month.calls.filter(kind=ProviderCall.Kind.UNATTRIBUTED)
        return calls.aggregate(total=Sum("cost"))["total"] or Decimal("0")

    @admin.display(description="reserved (calls in flight or unsettled)")
    def reserved(self, month: MonthlySpend) -> Decimal:
        return month.reservations.aggregate(total=Sum("amount"))["total"] or Decimal("0")

    @admin.display(description="calls in doubt")
    def in_doubt(self, month: MonthlySpend) -> int:
        return month.reservations.filter(in_doubt=True).count()

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
    list_display = (
        "created_at",
        "kind",
        "subject",
        "model",
        "cost",
        "provider_cost",
        "cost_source",
        "reserved",
        "generation_id",
        "rejected_reason",
    )
    list_filter = ("kind", OutcomeFilter, "cost_source", "month")
    search_fields = ("subject", "key", "generation_id", "rejected_reason")
    date_hierarchy = "created_at"


@admin.register(SpendReservation)
class SpendReservationAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "subject",
        "owner",
        "amount",
        "expires_at",
        "in_doubt",
        "note",
    )
    list_filter = ("in_doubt",)


@admin.register(SpendReconcile)
class SpendReconcileAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "key_usage",
        "baseline",
        "attributed",
        "pending",
        "unattributed",
        "booked",
        "settled",
        "generations_checked",
        "generations_differing",
        "note",
        "error",
    )
