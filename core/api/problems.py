"""Errors of the API as RFC 9457 problem details: `application/problem+json` with type, title,
status and detail, and for bad input `errors`, a list of {field, reason}.

Every error the API answers goes through here, so a client parses one shape whatever went
wrong; bad input is a 4xx naming the field, never a 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "/api/v1/problems/"  # a problem's type names its kind; the URI need not resolve


@dataclass
class ApiProblem(Exception):
    """Raise to answer with a problem: `kind` becomes the type URI's last part."""

    status: int
    detail: str
    kind: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


def problem_response(problem: ApiProblem) -> HttpResponse:
    title = HTTPStatus(problem.status).phrase
    body = {
        "type": TYPE_BASE + (problem.kind or title.lower().replace(" ", "-")),
        "title": title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors:
        body["errors"] = problem.errors
    response = HttpResponse(json.dumps(body), status=problem.status, content_type=CONTENT_TYPE)
    for name, value in problem.headers.items():
        response[name] = value
    return response


def _field(location) -> str:
    """A pydantic location as a client writes the field: ("body", "payload", "items", 3,
    "price") -> "items[3].price"; a query or path parameter by its name."""
    parts = list(location)[1:]  # "body", "query", "path"
    if parts and parts[0] == "payload":  # the body's parameter name, not the client's
        parts = parts[1:]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _validation(request, exc: ValidationError) -> HttpResponse:
    errors = [
        {"field": _field(error.get("loc", ())), "reason": error.get("msg", "is not valid")}
        for error in exc.errors
    ]
    return problem_response(
        ApiProblem(422, "The request has invalid fields; see errors.", "invalid-fields", errors)
    )


def _http_error(request, exc: HttpError) -> HttpResponse:
    if isinstance(exc, AuthenticationError):
        return problem_response(
            ApiProblem(
                401,
                "Send a valid API token as 'Authorization: Bearer <token>'.",
                "unauthenticated",
                headers={"WWW-Authenticate": "Bearer"},
            )
        )
    return problem_response(ApiProblem(exc.status_code, str(exc)))


def _not_found(request, exc) -> HttpResponse:
    return problem_response(ApiProblem(404, str(exc) or "There is nothing at this address."))


def _too_big(request, exc) -> HttpResponse:
    return problem_response(ApiProblem(413, "The request body is too large.", "too-large"))


def install(api: NinjaAPI) -> None:
    """Answer every error of `api` as problem details."""
    api.add_exception_handler(ApiProblem, lambda request, exc: problem_response(exc))
    api.add_exception_handler(ValidationError, _validation)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(Http404, _not_found)
    api.add_exception_handler(RequestDataTooBig, _too_big)


def not_found_view(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other address under /api/v1/: a problem, not the admin's HTML 404 page."""
    return problem_response(ApiProblem(404, "There is no such API endpoint."))
