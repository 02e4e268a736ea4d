"""The spending ledger in the admin: read-only, as provenance is."""

from django.contrib import admin

from core.models import MonthlySpend, ProviderCall, SpendReservation


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MonthlySpend)
class MonthlySpendAdmin(ReadOnlyAdmin):
    list_display = ("month", "spent", "updated_at")


@admin.register(ProviderCall)
class ProviderCallAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "kind",
        "subject",
        "model",
        "cost",
        "cost_source",
        "reserved",
        "rejected_reason",
    )
    list_filter = ("kind", "cost_source", "month")
    search_fields = ("subject", "key", "rejected_reason")
    date_hierarchy = "created_at"


@admin.register(SpendReservation)
class SpendReservationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "subject", "owner", "amount", "expires_at")
