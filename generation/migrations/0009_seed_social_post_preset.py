from django.db import migrations

NAME = "Social post with tagline"


def seed(apps, schema_editor):
    ChannelPreset = apps.get_model("generation", "ChannelPreset")
    ChannelPreset.objects.get_or_create(
        name=NAME,
        defaults={
            "aspect_ratio": "4:5",
            "size_tier": "1K",
            "white_background": False,
            "staged": True,
            "overlay_text": "New in",
            "language": "en",
            "qa_policy": "regenerate",
            "rules": "Lifestyle feed post: the garment is the clear subject, the scene calm. The "
            "tagline is the only text; no logos or watermarks.",
        },
    )


def unseed(apps, schema_editor):
    apps.get_model("generation", "ChannelPreset").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("generation", "0008_quality_checks_and_stages")]
    operations = [migrations.RunPython(seed, unseed)]
