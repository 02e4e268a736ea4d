"""Form fields shared by the admin pages."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from core.ids import id_parse


class IdsChoiceField(forms.ModelMultipleChoiceField):
    """Django's many-to-many field, refusing a value that is no id before the database sees it:
    Django's own checks let a huge integer through to a query that overflows (a 500 on SQLite)."""

    def _check_values(self, value):
        if not self.to_field_name:
            for pk in value if isinstance(value, (list, tuple)) else []:
                if id_parse(pk) is None:
                    raise ValidationError(
                        self.error_messages["invalid_pk_value"],
                        code="invalid_pk_value",
                        params={"pk": str(pk)[:50]},
                    )
        return super()._check_values(value)
