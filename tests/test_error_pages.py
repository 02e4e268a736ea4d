"""The error pages (400, 403, 404, 500 and a refused form) in the admin's look, with DEBUG off
as in production, each saying what to do next."""

import logging

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory

from config.errors import server_error

ADMIN_LOOK = "admin/css/base.css"


@pytest.fixture(autouse=True)
def production_errors(settings):
    assert not settings.DEBUG  # pytest.ini sets DJANGO_DEBUG=0; Django's test runner too
    settings.ROOT_URLCONF = "tests.error_urls"


@pytest.fixture
def merchandiser(db):
    user = User.objects.create_user("merch", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Merchandiser"))
    return user


def page(response, status: int) -> str:
    assert response.status_code == status
    html = response.content.decode()
    assert ADMIN_LOOK in html and "Bestseller promo studio" in html
    assert f"Error {status}" in html and "What to do next" in html
    return html


@pytest.mark.django_db
def test_a_missing_page_is_a_404_that_leads_to_the_dashboard(client):
    html = page(client.get("/no/such/page/"), 404)

    assert "<h1>Page not found</h1>" in html
    assert "<code>/no/such/page/</code>" in html
    assert 'href="/admin/">dashboard</a>' in html
    assert "log in</a>" in html  # a visitor who is not logged in is told they may need to


@pytest.mark.django_db
def test_a_missing_admin_page_is_the_same_404_for_staff(client, merchandiser):
    client.force_login(merchandiser)

    html = page(client.get("/admin/no-such-app/"), 404)

    assert "Page not found" in html and "log in</a>" not in html


@pytest.mark.django_db
def test_a_forbidden_admin_page_says_to_ask_an_admin_for_access(client, merchandiser):
    client.force_login(merchandiser)

    html = page(client.get("/admin/core/monthlyspend/"), 403)

    assert "<h1>You may not open this page</h1>" in html
    assert "Ask an administrator for access" in html
    assert 'href="/admin/">dashboard</a>' in html


@pytest.mark.django_db
def test_a_forbidden_page_asks_a_visitor_to_log_in_and_come_back(client):
    html = page(client.get("/test-errors/forbidden/"), 403)

    assert 'href="/admin/login/?next=%2Ftest-errors%2Fforbidden%2F">Log in</a>' in html
    assert "Only the requester may confirm this import." in html  # folded, for an admin


@pytest.mark.django_db
def test_a_form_refused_by_the_csrf_check_says_to_reload_and_send_again(merchandiser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(merchandiser)

    html = page(client.post("/admin/catalog/product/", {"action": "delete_selected"}), 403)

    assert "The form could not be sent" in html
    assert "reload the page, and send the form again" in html
    assert settings.CSRF_FAILURE_VIEW == "config.errors.csrf_failure"


@pytest.mark.django_db
def test_a_request_for_an_unknown_host_is_a_400(client):
    html = page(client.get("/admin/", HTTP_HOST="evil.example"), 400)

    assert "The request could not be understood" in html
    assert "Go back, reload the page and try again." in html


@pytest.mark.django_db
def test_a_crash_is_a_500_that_says_it_was_logged_without_touching_the_database(
    caplog, django_assert_num_queries
):
    client = Client(raise_request_exception=False)

    with caplog.at_level(logging.ERROR, logger="django.request"):
        with django_assert_num_queries(0):
            response = client.get("/test-errors/broken/")

    html = page(response, 500)
    assert "<h1>Something went wrong on our side</h1>" in html
    assert "problem was logged" in html and "Try again in a minute" in html
    assert any("a bug in a view" in str(record.exc_info) for record in caplog.records)


def test_the_500_page_renders_without_a_request_context_or_a_database():
    # No django_db mark: any query here fails the test.
    response = server_error(RequestFactory().get("/"))

    assert response.status_code == 500
    html = response.content.decode()
    assert ADMIN_LOOK in html and "Something went wrong on our side" in html
    assert "Welcome," not in html  # no user tools: nothing asked who is logged in
