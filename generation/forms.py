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
from generation.providers import get_image_generator, get_quality_checker, get_style_analyst
from generation.services import PRICE, BatchRequest
from generation.spending import Estimate, estimate


def providers_offline() -> bool:
    """True when the configured providers are all the offline ones: nothing is paid for."""
    return (
        get_style_analyst().is_offline
        and get_image_generator().is_offline
        and get_quality_checker().is_offline
    )


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
        choices=SizeTier.choices,
        initial=SizeTier.ONE_K,
        label="Size",
        error_messages={
            "invalid_choice": "Choose a size of " + ", ".join(SizeTier.values) + " (not %(value)s)."
        },
    )
    reference_count = forms.IntegerField(
        min_value=1,
        initial=settings.GENERATION_DEFAULT_REFERENCES,
        label="Reference bestsellers",
        help_text="How many similar bestsellers the style is taken from: all of them go to the "
        "image model, which blends their scene, light and pose.",
    )

    variants = forms.IntegerField(
        min_value=1,
        max_value=4,
        initial=1,
        required=False,
        label="Variants",
        help_text="Images to choose from per product and channel (1–4): approving one sets the others "
        "aside.",
        error_messages={
            "min_value": "Ask for 1 to 4 variants.",
            "max_value": "Ask for 1 to 4 variants.",
        },
    )

    def clean_variants(self) -> int:
        return self.cleaned_data.get("variants") or 1

    def quote(self, products: list[Product], *, offline: bool) -> Estimate:
        """What the request costs at most (valid form): every image call, input image,
        analysis and quality check, staged presets counted with their extra call."""
        data = self.cleaned_data
        per_preset = len(products) * data["variants"]
        return estimate(
            images_per_preset=[(per_preset, preset.staged) for preset in data["presets"]],
            size_tier=data["size_tier"],
            references=data["reference_count"],
            offline=offline,
        )

    def __init__(self, *args, products: list[Product] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.products = products or []
        # Read at construction, not import, so a changed setting (or a test's) applies.
        limit = settings.GENERATION_MAX_REFERENCES
        field = self.fields["reference_count"]
        field.max_value = limit
        field.validators.append(MaxValueValidator(limit))
        field.widget.attrs["max"] = limit
        message = f"Use between 1 and {limit} reference bestsellers."
        field.error_messages.update(min_value=message, max_value=message)

    def clean(self):
        data = super().clean()
        priced = [p.name for p in data.get("presets") or [] if PRICE in p.overlay_text]
        without_price = [p.sku for p in self.products if p.price is None]
        if priced and without_price:
            self.add_error(
                "presets",
                f"{', '.join(priced)} show{'s' if len(priced) == 1 else ''} "
                f"the price in the image, and {len(without_price)} selected "
                f"product(s) have none: {', '.join(without_price[:10])}"
                f"{' …' if len(without_price) > 10 else ''}. Leave "
                "that preset out, or set their prices first.",
            )
        return data

    def batch_request(self, products: list[Product]) -> BatchRequest:
        """The service's input for these products; call only on a valid form."""
        data = self.cleaned_data
        return BatchRequest(
            products=products,
            presets=list(data["presets"]),
            size_tier=data["size_tier"],
            reference_count=data["reference_count"],
            variants=data["variants"],
        )


class PresetRowForm(forms.ModelForm):
    """A row of the channel presets' list: its "active" box is named after its preset, since
    a screen reader does not take the column's header for a label (axe: label)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["is_active"].widget.attrs["aria-label"] = f"{self.instance.name}: active"
