"""The promo request as both entry points take it: the admin page and `manage.py generate_promos`.

Both validate through PromoRequestForm and price the request with `providers_offline()` and
`spending.estimate`, so the page and the command always agree on what a request is and costs.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator

from catalog.models import Product
from generation.models import ChannelPreset, SizeTier
from generation.providers import get_image_generator, get_style_analyst
from generation.services import BatchRequest


def providers_offline() -> bool:
    """True when both configured providers are the offline ones: nothing is paid for."""
    return get_style_analyst().is_offline and get_image_generator().is_offline


def usd(amount: Decimal | int) -> str:
    # Three decimals: image prices such as $0.045 must not be rounded to whole cents.
    return f"${Decimal(amount).quantize(Decimal('0.001')):,}"


class PromoRequestForm(forms.Form):
    presets = forms.ModelMultipleChoiceField(
        queryset=ChannelPreset.objects.filter(is_active=True),
        widget=forms.CheckboxSelectMultiple,
        label="Channel presets",
        help_text="One image per selected product and preset.",
        error_messages={
            "required": "Choose at least one channel preset.",
            "invalid_choice": "Preset %(value)s is not an active channel preset.",
        },
    )
    size_tier = forms.ChoiceField(
        choices=SizeTier.choices, initial=SizeTier.ONE_K, label="Size",
        error_messages={"invalid_choice": "Choose a size of "
                        + ", ".join(SizeTier.values) + " (not %(value)s)."},
    )
    reference_count = forms.IntegerField(
        min_value=1, initial=1, label="Reference bestsellers",
        help_text="How many similar bestsellers the style is taken from.",
    )

    variants = forms.IntegerField(
        min_value=1, max_value=4, initial=1, required=False, label="Variants",
        help_text="Candidates per product and preset (1–4): approving one sets the others aside.",
        error_messages={"min_value": "Ask for 1 to 4 variants.", "max_value": "Ask for 1 to 4 variants."},
    )

    def clean_variants(self) -> int:
        return self.cleaned_data.get("variants") or 1

    def image_count(self, products: list[Product]) -> int:
        """How many images the request makes: products × presets × variants (valid form)."""
        data = self.cleaned_data
        return len(products) * len(data["presets"]) * data["variants"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read at construction, not import, so a changed setting (or a test's) applies.
        limit = settings.GENERATION_MAX_REFERENCES
        field = self.fields["reference_count"]
        field.max_value = limit
        field.validators.append(MaxValueValidator(limit))
        field.widget.attrs["max"] = limit
        message = f"Use between 1 and {limit} reference bestsellers."
        field.error_messages.update(min_value=message, max_value=message)

    def batch_request(self, products: list[Product]) -> BatchRequest:
        """The service's input for these products; call only on a valid form."""
        data = self.cleaned_data
        return BatchRequest(products=products, presets=list(data["presets"]),
                            size_tier=data["size_tier"], reference_count=data["reference_count"],
                            variants=data["variants"])
