"""What a page must be to work under the site's Content-Security-Policy (settings'
CONTENT_SECURITY_POLICY): no inline script (a <script> without src, an on…= attribute, a
javascript: URL) and no <style> element, as the policy runs and applies neither. The browser
tests check the same in Chromium (tests/browser.py, csp_violations)."""

import re

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
EVENT_ATTRIBUTE = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style\b", re.IGNORECASE)


def assert_strict_csp(response) -> None:
    """The response carries the policy, and its HTML nothing the policy would block."""
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy.split("style-src-attr")[0]
    html = response.content.decode()
    for pattern in (INLINE_SCRIPT, EVENT_ATTRIBUTE, JAVASCRIPT_URL, STYLE_ELEMENT):
        found = pattern.search(html)
        assert found is None, f"blocked by the CSP: {html[found.start() : found.start() + 120]!r}"
