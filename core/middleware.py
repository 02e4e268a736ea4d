"""Requests that no view can answer sensibly, refused with a 400 before any view reads them.

Three kinds reach the database or the standard library and fail there with a 500 rather than a
clear answer, whichever view they are sent to (Django's own admin views included):
- a NUL character anywhere in the path or a parameter: PostgreSQL refuses it in text and the
  file system in a name;
- an admin selection (`_selected_action`) that is not an id: the changelist's actions filter
  by it as is (core.ids says what an id is);
- a date hierarchy's year, month or day that is not a short number: the changelist builds a
  date from it and overflows.
The 400 page (config.errors.bad_request) says the request could not be understood; the API
answers with a problem document instead, as for its other errors.
"""

from __future__ import annotations

import re

from django.core.exceptions import BadRequest
from django.http import HttpRequest, QueryDict

from core.api.problems import ApiProblem, problem_response
from core.ids import id_parse

API_PREFIX = "/api/"
SELECTED = "_selected_action"  # the admin's checkbox name (django.contrib.admin.helpers)
DATE_PART = re.compile(r".+__(year|month|day)")
DATE_VALUE = re.compile(r"[0-9]{1,4}")


def input_guard(get_response):
    def middleware(request: HttpRequest):
        try:
            input_check(request)
        except BadRequest as exc:
            if request.path.startswith(API_PREFIX):  # the API answers in its own format
                return problem_response(ApiProblem(400, str(exc), "bad-input"))
            raise
        return get_response(request)

    return middleware


def input_check(request: HttpRequest) -> None:
    """Raise BadRequest (a 400) naming what is wrong with the request's path or parameters."""
    if "\x00" in request.path:
        raise BadRequest("The address holds a NUL character.")
    _parameters_check(request.GET)
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        _parameters_check(request.POST)


def _parameters_check(parameters: QueryDict) -> None:
    for name, values in parameters.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            raise BadRequest(f"The parameter {name[:50]!r} holds a NUL character.")
        if name == SELECTED and any(id_parse(value) is None for value in values):
            raise BadRequest("The selection holds something that is not an id.")
        if DATE_PART.fullmatch(name) and not all(DATE_VALUE.fullmatch(v) for v in values):
            raise BadRequest(f"The date part {name[:50]!r} is not a number.")
