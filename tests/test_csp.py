"""The Content-Security-Policy (settings' CONTENT_SECURITY_POLICY, django-csp) outside the
admin pages the smoke test renders: the login, lockout and error pages, the API, the images'
origins with S3 storage, and the endpoint the browsers report violations to."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from tests.csp import assert_strict_csp

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return dict(part.strip().partition(" ")[::2] for part in policy.split(";"))


def test_the_login_page_carries_the_whole_policy(client):
    response = client.get("/admin/login/")
    assert_strict_csp(response)
    assert directives(response) == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "style-src-attr": "'unsafe-inline'",
        "img-src": "'self' data:",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
        "report-uri": "/csp-report/",
    }


def test_error_pages_the_lockout_page_and_the_api_carry_it_too(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and "Page not found" in response.content.decode()
    assert_strict_csp(response)  # the 404 page in the admin's look
    User.objects.create_user("rita", password="right", is_staff=True)
    for _ in range(5):
        response = client.post("/admin/login/", {"username": "rita", "password": "wrong"})
    assert response.status_code == 429
    assert_strict_csp(response)
    assert "frame-ancestors 'none'" in client.get("/api/v1/products")["Content-Security-Policy"]


def policy_with(env: dict[str, str]) -> str:
    """img-src as settings make it from these variables, in a fresh process."""
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(' '.join(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src']))"
    )
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV_FILE": "",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=environ, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_images_may_come_from_the_s3_bucket_and_the_published_base_url():
    assert policy_with({"AWS_STORAGE_BUCKET_NAME": "promo", "AWS_S3_REGION_NAME": "eu-west-1"}) == (
        "'self' data: https://promo.s3.amazonaws.com https://promo.s3.eu-west-1.amazonaws.com"
    )
    assert policy_with(
        {
            "AWS_STORAGE_BUCKET_NAME": "promo",
            "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "PUBLISHED_BASE_URL": "https://cdn.example.com/promo/",
        }
    ) == ("'self' data: https://cdn.example.com http://127.0.0.1:9000")


def test_a_violation_report_becomes_a_log_line(client, caplog):
    report = {
        "csp-report": {
            "document-uri": "http://testserver/admin/",
            "violated-directive": "script-src-elem",
            "blocked-uri": "inline",
            "line-number": 12,
        }
    }
    with caplog.at_level(logging.WARNING, logger="core.csp_reports"):
        response = client.post(
            "/csp-report/", json.dumps(report), content_type="application/csp-report"
        )
    assert response.status_code == 204
    [line] = [r.getMessage() for r in caplog.records if r.name == "core.csp_reports"]
    assert "script-src-elem" in line and "'inline'" in line and "/admin/" in line


def test_a_report_that_is_not_one_is_refused(client):
    assert client.post("/csp-report/", "nonsense", content_type="text/plain").status_code == 400
    assert client.post("/csp-report/", "[1]", content_type="application/json").status_code == 400
    big = json.dumps({"csp-report": {"blocked-uri": "x" * 20_000}})
    assert client.post("/csp-report/", big, content_type="application/json").status_code == 413
    assert client.get("/csp-report/").status_code == 405
