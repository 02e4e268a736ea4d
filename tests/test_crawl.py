"""No 500 on any input: every URL the project serves, as every role, with hostile values.

The URLs are not listed here: they are read from the URL configuration when the test runs (the
admin site's own views, each registered ModelAdmin's `get_urls()`, the API's routes, the feeds
and the media views), so a new page is crawled without touching this file. Each path id gets
real values and hostile ones; each page's query parameters (read from the page itself: its
filter links and GET forms; the API's from its OpenAPI schema) get the hostile values all at
once and, for the superuser, one by one; each POST form a page shows is posted with them; each
admin action is posted with hostile ids; each API route gets hostile JSON bodies. Every answer
must be a page, a redirect or a 4xx, never a 5xx; on failure the test prints every URL, role
and exception it found. It takes about a minute for the four roles.

The data is the admin smoke test's: an object of every registered model in every state.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

from catalog.models import Product
from config.api import api
from core.api_tokens import api_token_create
from core.models import ApiScope
from generation.models import GenerationBatch
from tests.test_admin_smoke import admin_data, smoke_settings  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

# What a person or a script might send, as it appears in a URL (percent-encoded where needed).
HOSTILE = {
    "huge integer": "99999999999999999999999",
    "negative": "-1",
    "superscript two": "%C2%B2",
    "Arabic-Indic digits": "%D9%A1%D9%A2%D9%A3",
    "NUL": "%00",
    "10 KB": "x" * 10_240,
    "300 characters": "y" * 300,
    "broken UTF-8": "%E0%A4%A",
    "bad escape": "%ZZ",
}
# Bodies sent to every API route: empty, broken, and the typed fields (a reason, feedback, a
# note, a name, a list of SKUs or presets) too long, holding NUL, or of the wrong type.
_TEXT_FIELDS = ("reason", "feedback", "note", "name", "sku", "category", "preset")
API_BODIES = [
    "[",
    "\x00",
    json.dumps({name: "x" * 10_240 for name in _TEXT_FIELDS}),
    json.dumps({name: "a\x00b" for name in _TEXT_FIELDS}),
    json.dumps({"skus": ["\x00", "x" * 300], "presets": ["\x00"], "items": [{"sku": "\x00"}]}),
    json.dumps({"skus": [10**30], "presets": [10**30], "reference_count": 10**30, "variants": -1}),
    "{}",  # last: it may do what the route does (approve the image in review)
]
# Parameters every admin page may be sent: the changelist's sort, page, search, selection,
# popup and preserved filters; the API's cursor and page size.
COMMON_PARAMETERS = ["o", "p", "q", "_selected_action", "all", "_to_field", "_popup", "e"]
# Of those, the ones sent only all at once (Django's own, each read in one place).
RARE_PARAMETERS = {"all", "_to_field", "_popup", "e"}
# Parameters that are not the page's inputs.
IGNORED_PARAMETERS = {"csrfmiddlewaretoken", "next"}
ROLES = ["superuser", "merchandiser", "reviewer", "anonymous"]


def readiness_answer(url: str, response) -> bool:
    """/readyz answers 503 on purpose while a part is down (no Milvus listens in this test): a
    designed answer when its body names every part, not a failure."""
    if not url.startswith("/readyz") or response.status_code != 503:
        return False
    return set(json.loads(response.content)) == {"database", "redis", "milvus", "storage"}


@dataclass
class Crawl:
    """What was sent and what came back wrong."""

    failures: list[str] = field(default_factory=list)
    requests: int = 0

    def send(self, client: Client, role: str, method: str, url: str, **extra) -> object:
        self.requests += 1
        response = getattr(client, method)(url, **extra)
        if response.status_code >= 500 and not readiness_answer(url, response):
            exc_info = getattr(response, "exc_info", None)
            reason = (
                "".join(traceback.format_exception(*exc_info)[-2:]).strip()
                + " | "
                + "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
                if exc_info
                else response.content[:300].decode(errors="replace")
            )
            self.failures.append(
                f"{response.status_code} {method.upper()} {url[:200]} as {role}\n    {reason}"
            )
        return response

    def report(self) -> str:
        return f"{len(self.failures)} answer(s) of 5xx:\n" + "\n".join(self.failures)


# --- the URLs, from the URL configuration ----------------------------------------------------

PART = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>[^)]*)\)")


@dataclass
class Route:
    """A URL pattern as a template: literal text with {name} for each path part."""

    template: str
    parts: dict[str, str]  # name -> converter ("path", "int", "str", or a regex's alternatives)
    name: str | None

    def url(self, values: dict[str, str]) -> str:
        return "/" + self.template.format(**values)


def routes(patterns=None, prefix: str = "") -> list[Route]:
    """Every URL pattern under the root URL configuration, resolvers followed."""
    found = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        template, parts = _template(pattern.pattern)
        if isinstance(pattern, URLResolver):
            for route in routes(pattern.url_patterns, prefix + template):
                route.parts = {**parts, **route.parts}
                found.append(route)
        elif isinstance(pattern, URLPattern):
            found.append(Route(prefix + template, parts, pattern.name))
    return found


def _template(pattern) -> tuple[str, dict[str, str]]:
    if isinstance(pattern, RoutePattern):
        route = str(pattern).replace("{", "{{").replace("}", "}}")
        parts = {m["name"]: m["converter"] or "str" for m in PART.finditer(route)}
        return PART.sub(lambda m: "{" + m["name"] + "}", route), parts
    assert isinstance(pattern, RegexPattern), pattern
    regex = str(pattern).removeprefix("^").removesuffix("$")
    parts = {m["name"]: m["body"] for m in GROUP.finditer(regex)}
    return GROUP.sub(lambda m: "{" + m["name"] + "}", regex).replace(".*", ""), parts


def hostile_values(route: Route, name: str, real: str | None) -> list[str]:
    """The hostile values for one path part; a path part also gets them under a real folder
    (media/products/<hostile>), where the view reads the name."""
    values = list(HOSTILE.values())
    if route.parts[name] == "path" and real and "/" in real:
        values += [real.rsplit("/", 1)[0] + "/" + value for value in HOSTILE.values()]
    return values


# --- what each page reads: its filter links and its form fields ------------------------------


class Inputs(HTMLParser):
    """What a page lets a person send: the query parameter names it reads (its links'
    ?batch__id__exact=…, the fields of its GET forms such as the changelist's search and the
    gallery's filters) and its POST forms (where each posts, and its field names)."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()
        self.forms: list[tuple[str, set[str]]] = []
        self.form: tuple[str, set[str]] | None = None  # the POST form being read
        self.in_get_form = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.in_get_form = (attrs.get("method") or "get").lower() == "get"
            if not self.in_get_form:
                self.form = (attrs.get("action") or "", set())
                self.forms.append(self.form)
        if tag in ("input", "select", "textarea", "button") and attrs.get("name"):
            if self.in_get_form:
                self.names.add(attrs["name"])
            elif self.form is not None:
                self.form[1].add(attrs["name"])
                if attrs["name"] == "post" and attrs.get("value") == "yes":
                    self.forms.remove(self.form)  # a deletion's confirmation: not crawled
        if tag == "a" and (attrs.get("href") or "").startswith("?"):
            self.names.update(name for name, _ in parse_qsl(attrs["href"][1:]))

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_get_form, self.form = False, None


def page_inputs(response) -> Inputs:
    parser = Inputs()
    if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
        parser.feed(response.content.decode(errors="replace"))
    return parser


def page_parameters(inputs: Inputs) -> list[str]:
    """The page's own query parameters; a page that has any (a list) also gets the admin's
    common ones."""
    if not inputs.names:
        return []
    return sorted((inputs.names | set(COMMON_PARAMETERS)) - IGNORED_PARAMETERS)


def api_parameters() -> dict[str, list[str]]:
    """Each API path's query parameters, from the OpenAPI schema."""
    schema = api.get_openapi_schema()
    found: dict[str, list[str]] = {}
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    found.setdefault(path.rstrip("/"), []).append(parameter["name"])
    return found


# --- the people ------------------------------------------------------------------------------


@pytest.fixture
def clients(admin_user, admin_data):
    """A logged-in client and an API token (every scope) for each role; anonymous has none."""
    reviewer = User.objects.create_user("reviewer", is_staff=True)
    reviewer.groups.add(Group.objects.get(name="Reviewer"))
    people = {
        "superuser": admin_user,
        "merchandiser": admin_data["auth.user", "merchandiser"],
        "reviewer": reviewer,
    }
    found = {}
    for role in ROLES:
        client = Client(raise_request_exception=False)
        token = None
        if role in people:
            client.force_login(people[role])
            token = api_token_create(name=role, owner=people[role], scopes=ApiScope.values)[1]
        found[role] = (client, token)
    return found


def real_values(admin_data) -> dict[str, str]:
    """A real value for each path part name, so that pages past the id are reached too."""
    asset = admin_data["generation.generatedasset", "in_review"]  # decisions apply to it
    return {
        "asset_id": str(asset.pk),
        "batch_id": str(GenerationBatch.objects.order_by("pk").first().pk),
        "sku": Product.objects.order_by("pk").first().sku,
        "name": asset.image.name,  # under media/
        "job_id": "1",
        "token": "0" * 32,
        "field": "csv_file",
        "index": "0",
        "rest": "anything",
        "id": str(admin_data["auth.user", "merchandiser"].pk),
        "url": "",
        "content_type_id": "1",
    }


def admin_object_ids() -> dict[str, str]:
    """The first object's id of each registered model, by its admin URL prefix."""
    ids = {}
    for model in admin.site._registry:
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            ids[f"admin/{model._meta.app_label}/{model._meta.model_name}/"] = str(first.pk)
    return ids


def fill(route: Route, real: dict[str, str], object_ids: dict[str, str]) -> dict[str, str]:
    values = {}
    for name, converter in route.parts.items():
        if name == "object_id":
            prefix = route.template.split("{object_id}")[0]
            values[name] = object_ids.get(prefix, "1")
        elif "|" in converter:  # a regex's alternatives: the admin's app labels
            values[name] = converter.split("|")[0]
        else:
            values[name] = real.get(name, "1")
    return values


# The values tried in each parameter on its own: one of each kind a view might mis-parse (an
# int, a digit test, a text column, a decoder). Every hostile value is also sent in all the
# parameters at once.
ONE_BY_ONE = ["huge integer", "superscript two", "Arabic-Indic digits", "10 KB", "broken UTF-8"]


def hostile_queries(names: list[str], *, thorough: bool) -> list[str]:
    """Each hostile value in every parameter at once; for the superuser, who sees every page,
    also each kind in each parameter on its own, as one bad parameter can hide another (the
    changelist refuses the first it cannot use). That keeps the crawl under a minute."""
    queries = ["&".join(f"{quote(name)}={value}" for name in names) for value in HOSTILE.values()]
    if thorough:
        queries += [
            f"{quote(name)}={HOSTILE[kind]}"
            for name in names
            if name not in RARE_PARAMETERS
            for kind in ONE_BY_ONE
        ]
    return queries


# --- the crawl -------------------------------------------------------------------------------


@pytest.fixture
def crawl_settings(settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000  # the crawl is not what the limit is about


def crawl_role(crawl: Crawl, role: str, client: Client, token: str | None, admin_data) -> None:
    real = real_values(admin_data)
    object_ids = admin_object_ids()
    api_query = api_parameters()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    posted: set[tuple[str, frozenset[str]]] = set()
    for route in routes():
        is_api = route.template.startswith("api/")
        values = fill(route, real, object_ids)
        url = route.url(values)
        extra = headers if is_api else {}
        base = crawl.send(client, role, "get", url, **extra)
        # Hostile values in each path part, the others real. A page this role is refused reads
        # the id with the same code as for the superuser, who is sent them all.
        refused = base.status_code == 403 and role != "superuser"
        for name in [] if refused else route.parts:
            for value in hostile_values(route, name, values[name]):
                crawl.send(client, role, "get", route.url({**values, name: value}), **extra)
        if base.status_code != 200:
            continue  # refused or redirected: the page's parameters are never read
        if is_api:
            names = api_query.get("/" + route.template.rstrip("/"), [])
        else:
            inputs = page_inputs(base)
            names = page_parameters(inputs)
            if role == "superuser":
                post_forms(crawl, role, client, url, inputs, posted)
        for query in hostile_queries(names, thorough=role == "superuser"):
            crawl.send(client, role, "get", f"{url}?{query}", **extra)
        if is_api:
            for method in ("post", "put"):
                for body in API_BODIES:
                    crawl.send(
                        client, role, method, url, data=body, content_type="application/json"
                    )


LOGOUT = "/admin/logout/"


def post_forms(crawl: Crawl, role: str, client: Client, url: str, inputs: Inputs, posted) -> None:
    """Each POST form of the page (a change form, the decision form, the request form), every
    field holding the same hostile value, once per form; never the logout form (the crawl goes
    on logged in) nor a deletion's confirmation (the objects are needed by later pages)."""
    for action, names in inputs.forms:
        target = urljoin(url, action or url)
        key = (urlsplit(target).path, frozenset(names))
        if key[0] == LOGOUT or key in posted:
            continue
        posted.add(key)
        fields = sorted(names - IGNORED_PARAMETERS - {"_popup", "_to_field"})
        for value in HOSTILE.values():
            crawl.send(
                client,
                role,
                "post",
                target,
                data="&".join(f"{quote(name)}={value}" for name in fields),
                content_type="application/x-www-form-urlencoded",
            )


def crawl_actions(crawl: Crawl, role: str, client: Client) -> None:
    """Every admin action of every changelist, posted with hostile ids."""
    for model, model_admin in admin.site._registry.items():
        changelist = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        response = client.get(changelist)
        if response.status_code != 200 or "cl" not in (response.context or {}):
            continue
        request = response.wsgi_request
        for action in model_admin.get_actions(request):
            for value in [*HOSTILE.values(), "1"]:
                crawl.send(
                    client,
                    role,
                    "post",
                    changelist,
                    data=f"action={action}&_selected_action={value}&index=0",
                    content_type="application/x-www-form-urlencoded",
                )


@pytest.mark.parametrize("role", ROLES)
def test_no_5xx_on_any_url_with_hostile_values(clients, admin_data, crawl_settings, role):
    client, token = clients[role]
    crawl = Crawl()
    started = time.monotonic()
    crawl_role(crawl, role, client, token, admin_data)
    crawl_actions(crawl, role, client)
    print(f"{role}: {crawl.requests} requests in {time.monotonic() - started:.1f} s")
    assert not crawl.failures, crawl.report()


def test_the_crawl_reaches_every_admin_page_and_api_route():
    """The crawl is driven by the URL configuration: every ModelAdmin's views and custom
    views, the admin site's, and the API's routes are in it."""
    templates = {route.template for route in routes()}
    for model in admin.site._registry:
        prefix = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        for view in ("", "add/", "{object_id}/change/", "{object_id}/delete/"):
            assert prefix + view in templates
    assert "admin/generation/generationbatch/request/" in templates
    assert "admin/generation/generatedasset/gallery/" in templates
    assert "api/v1/assets/{asset_id}" in templates
    assert "media/{name}" in templates


def test_the_crawl_reports_a_5xx_with_its_url_role_and_exception(settings, admin_client):
    """With a view that fails on purpose in the URL configuration, the crawl finds it."""
    settings.ROOT_URLCONF = "tests.error_urls"
    admin_client.raise_request_exception = False
    crawl = Crawl()
    for route in routes():
        if route.template.startswith("test-errors/"):
            crawl.send(admin_client, "superuser", "get", route.url({}))
    assert len(crawl.failures) == 1
    assert "/test-errors/broken/ as superuser" in crawl.failures[0]
    assert "RuntimeError: a bug in a view" in crawl.failures[0]
