from django.db import migrations

PRESETS = [
    (
        "Marketplace main image",
        "1:1",
        "1K",
        True,
        "Pure white background (RGB 255,255,255). The product fills about 85% of the frame. "
        "No text, logos, watermarks, borders, badges or props; the product only.",
    ),
    (
        "Storefront hero",
        "3:4",
        "2K",
        False,
        "Full-body lifestyle shot with the garment as the clear subject. Leave calm space at the top "
        "for a headline; no text in the image.",
    ),
    (
        "Web banner",
        "4:1",
        "1K",
        False,
        "Wide lifestyle scene; keep the model and garment in the left or right third and the rest "
        "calm for overlay text. No text, logos or buttons in the image.",
    ),
    (
        "Ultra-wide banner",
        "8:1",
        "1K",
        False,
        "Very wide, shallow scene; the garment must stay fully visible and sharp in the central "
        "area. No text, logos or buttons.",
    ),
    (
        "Social story",
        "9:16",
        "1K",
        False,
        "Vertical full-body shot for mobile stories; keep the top and bottom 12% free of key "
        "details (interface overlays). No text in the image.",
    ),
]


def seed(apps, schema_editor):
    ChannelPreset = apps.get_model("generation", "ChannelPreset")
    for name, ratio, tier, white, rules in PRESETS:
        ChannelPreset.objects.get_or_create(
            name=name,
            defaults={
                "aspect_ratio": ratio,
                "size_tier": tier,
                "white_background": white,
                "rules": rules,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("generation", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
