"""Admin pages for rows that only the studio writes (the ledger, imports, channel days): people
read them, nobody adds, edits or deletes them by hand."""


class ViewOnlyMixin:
    """Put before admin.ModelAdmin: no add, change or delete, whoever asks."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
