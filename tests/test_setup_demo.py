import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from catalog.models import Product

pytestmark = pytest.mark.django_db


def test_setup_demo_creates_a_login_and_loads_the_sample_into_an_empty_catalog(
    settings, tmp_path, capsys
):
    settings.VAR_DIR = tmp_path

    call_command("setup_demo")
    first = capsys.readouterr().out
    call_command("setup_demo")
    second = capsys.readouterr().out

    password = (tmp_path / "admin-password.txt").read_text().strip()
    assert f"Login: admin / {password}" in first and f"Login: admin / {password}" in second
    assert User.objects.get(username="admin").check_password(password)
    assert Product.objects.count() == 44 and Product.objects.awaiting_promos().count() == 4
    assert "sample not loaded" in second
