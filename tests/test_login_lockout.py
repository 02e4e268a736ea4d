"""Login throttling (django-axes, core/lockout.py): the real admin login form, posted."""

import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


@pytest.fixture
def staff():
    for name in ("rita", "sam"):
        User.objects.create_user(name, password="right-password", is_staff=True)


def log_in(client, username, password="right-password", address="10.0.0.1"):
    return client.post(
        LOGIN,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def fail(client, username, times, address="10.0.0.1"):
    for _ in range(times):
        response = log_in(client, username, "wrong", address)
        assert response.status_code in (200, 429)
    return response


def test_five_wrong_passwords_lock_the_account_from_that_address(client, staff):
    response = fail(client, "rita", 4)
    assert response.status_code == 200  # the form again, "Please enter the correct …"
    response = fail(client, "rita", 1)
    assert response.status_code == 429
    assert int(response["Retry-After"]) == 15 * 60

    response = log_in(client, "rita")  # the right password, refused unchecked
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    page = response.content.decode()
    assert "Too many failed logins" in page and "Wait 15 minutes" in page
    assert 'id="site-name"' in page  # the admin's look
    assert "Access attempts" in page  # who can lift it

    # Rita from another address (her phone) and Sam from the same one still get in.
    assert logged_in(log_in(Client(), "rita", address="10.0.0.2"))
    assert logged_in(log_in(Client(), "sam"))


def test_an_address_is_locked_for_everyone_past_its_own_limit(client, staff, settings):
    for n in range(settings.LOGIN_FAILURES_PER_ADDRESS - 1):
        fail(client, f"guess{n}", 1)  # one try per username: never the per-user limit
    assert logged_in(log_in(Client(), "sam"))  # 19 failures from the address: still in
    fail(client, "guess-last", 1)
    assert log_in(Client(), "sam").status_code == 429
    assert logged_in(log_in(Client(), "sam", address="10.0.0.9"))  # another address


def test_the_cool_off_lifts_the_lock(client, staff):
    fail(client, "rita", 5)
    assert log_in(client, "rita").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert logged_in(log_in(client, "rita"))


def test_an_administrator_lifts_the_lock(client, staff, admin_client):
    fail(client, "rita", 5)
    call_command("axes_reset_username", "rita")
    assert logged_in(log_in(client, "rita"))

    fail(client, "rita", 5)
    attempt = AccessAttempt.objects.get(username="rita")
    # The admin's Axes pages list the attempt, and deleting it there lifts the lock too.
    assert "rita" in admin_client.get("/admin/axes/accessattempt/").content.decode()
    response = admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert logged_in(log_in(client, "rita"))


def test_failed_attempts_are_recorded_and_logged(client, staff, caplog):
    with caplog.at_level(logging.WARNING, logger="axes"):
        fail(client, "rita", 5)
    attempt = AccessAttempt.objects.get(username="rita")
    assert attempt.ip_address == "10.0.0.1" and attempt.failures_since_start == 5
    assert "wrong" not in attempt.post_data  # the password is never stored
    messages = [r.getMessage() for r in caplog.records]
    assert any("login failure" in m and "rita" in m for m in messages)
    assert any("Locking out" in m for m in messages)


def test_force_login_is_untouched_by_the_lockout(client, staff):
    fail(Client(), "rita", 5)
    client.force_login(User.objects.get(username="rita"))
    assert client.get("/admin/").status_code == 200


def test_the_address_comes_from_the_proxy_header_only_when_configured(client, staff, settings):
    # Unconfigured: a forged X-Forwarded-For is ignored, the failures count for REMOTE_ADDR.
    for n in range(5):
        client.post(
            LOGIN,
            {"username": "rita", "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
    assert log_in(client, "rita").status_code == 429

    # Behind one proxy: the entry it appended, not what the client put before it.
    settings.LOGIN_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    response = client.post(
        LOGIN,
        {"username": "rita", "password": "right-password", "next": "/admin/"},
        REMOTE_ADDR="172.16.0.5",  # the proxy
        HTTP_X_FORWARDED_FOR="10.0.0.1, 198.51.100.7",
    )
    assert logged_in(response)  # 198.51.100.7 has no failures; the forged 10.0.0.1 is ignored
    response = client.post(
        LOGIN,
        {"username": "rita", "password": "right-password", "next": "/admin/"},
        REMOTE_ADDR="172.16.0.5",
        HTTP_X_FORWARDED_FOR="10.0.0.1",
    )
    assert response.status_code == 429

    # A header entry that is no address counts for REMOTE_ADDR (axes stores an IP column).
    response = client.post(
        LOGIN,
        {"username": "sam", "password": "wrong", "next": "/admin/"},
        REMOTE_ADDR="172.16.0.5",
        HTTP_X_FORWARDED_FOR="unknown\x00" + "9" * 300,
    )
    assert response.status_code == 200
    assert AccessAttempt.objects.get(username="sam").ip_address == "172.16.0.5"


@pytest.mark.parametrize(
    "username,agent",
    [
        ("a" * 10_000, "ok"),
        ("a\x00b", "ok"),
        ("rita", "x" * 10_000),
        ("rita", "bad\x00agent"),
        ("²³", "ok"),
    ],
    ids=["long-username", "nul-username", "long-agent", "nul-agent", "non-ascii"],
)
def test_hostile_logins_are_refused_not_a_500(client, staff, username, agent):
    response = client.post(
        LOGIN,
        {"username": username, "password": "wrong", "next": "/admin/"},
        HTTP_USER_AGENT=agent,
    )
    assert response.status_code == 200  # the form again, with its error
    assert "_auth_user_id" not in client.session
    # A right login from that browser is recorded too (axes' access log).
    response = client.post(
        LOGIN,
        {"username": "sam", "password": "right-password", "next": "/admin/"},
        HTTP_USER_AGENT=agent,
    )
    assert logged_in(response)
    assert client.post("/admin/logout/", HTTP_USER_AGENT=agent).status_code == 200
