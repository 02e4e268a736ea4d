"""The two roles: merchandisers request generation, reviewers decide what gets published."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Merchandiser": [
        ("catalog", "view_product"),
        ("catalog", "add_product"),
        ("catalog", "change_product"),
        ("catalog", "delete_product"),
        ("catalog", "import_products"),
        ("generation", "request_promos"),
        ("generation", "view_generationbatch"),
        ("generation", "view_generatedasset"),
        ("generation", "view_channelpreset"),
        ("generation", "add_channelpreset"),
        ("generation", "change_channelpreset"),
    ],
    "Reviewer": [
        ("catalog", "view_product"),
        ("generation", "view_generationbatch"),
        ("generation", "view_generatedasset"),
        ("generation", "view_channelpreset"),
        ("generation", "review_asset"),
        ("generation", "publish_asset"),
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; these groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in codenames:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0003_review_and_publishing"),
        ("catalog", "0002_vector_index"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
