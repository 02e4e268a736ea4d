"""The one OpenRouter client (the openai SDK pointed at OpenRouter) and its one error type.

The embedder, the style analyst and the image generator all call through `request()`, so every
failure leaves as a ProviderError that quotes what OpenRouter said and says whether waiting
may help.

Retry policy: one layer, the message; the rate limit is a wait
--------------------------------------------------------------
- The SDK never retries (``max_retries=0``). A retry inside a call would sleep in the worker
  thread, hold the worker for minutes and multiply with the retries below.
- Each call waits at most OPENROUTER_TIMEOUT seconds for the server (connect, and between any
  two chunks of the answer).
- Every call of a model first takes one of the model's slots (core.ratelimit): the calls in
  flight follow what the provider admits, and a 429 (its Retry-After or X-RateLimit-Reset,
  capped at OPENROUTER_MAX_RETRY_AFTER) blocks the model for every worker. A 429 raises
  ProviderError(status=429, retryable=True); so does a slot that does not come within the
  caller's wait. A generated asset treats it as a wait, not an attempt: its steps go on in the
  worker once the model has a slot, and past OPENROUTER_RATE_WAIT_SECONDS the message is sent
  again for later (generation.pipeline). An index sync retries its message after the delay.
- Any other transient failure (connection error, timeout, 408, 5xx, or such an error inside an
  HTTP 200 answer) raises ProviderError(retryable=True), with `retry_after` when the server
  sent Retry-After. The task ends and Dramatiq delivers the message again after that delay (or
  an exponential backoff); nothing sleeps:
    * a generated asset: GENERATION_MAX_ATTEMPTS attempts in all, counted on the asset so a
      redelivered message knows them (generation.pipeline), then the asset fails with the
      last error; finished steps are never paid again;
    * an index sync: the actor's max_retries (catalog.tasks), then the periodic reconcile
      picks up whatever is still pending or failed; cached embeddings are never paid again.
- Everything else (400, 401, 402, 403, unusable answers) raises ProviderError(retryable=False)
  and is not retried: the asset or product shows the provider's message.
- Time: a generation message makes at most GENERATION_CALLS_PER_MESSAGE calls (analyse, the
  scene of a staged preset, generate, and QA_MAX_CALLS quality checks: 5 by default) and waits
  at most OPENROUTER_RATE_WAIT_SECONDS for slots, so it runs at most 5 × OPENROUTER_TIMEOUT +
  90 s plus local work: 840 s with the defaults, below the actor's
  GENERATION_TIME_LIMIT_SECONDS (900 s). Settings refuse to load (ImproperlyConfigured) when
  GENERATION_CALLS_PER_MESSAGE × OPENROUTER_TIMEOUT + OPENROUTER_RATE_WAIT_SECONDS + 30 s does
  not stay below it. An index sync that reaches its time limit is delivered again and resumes
  from the embedding cache, which is saved after every call.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import openai
from django.conf import settings
from django.db import connection

from core import ratelimit

T = TypeVar("T")
TRANSIENT_STATUSES = frozenset({408, 429, *range(500, 600)})
QUOTED_CHARS = 300  # how much of an unexpected answer an error message quotes


class ProviderError(Exception):
    """A failed provider call, with what the provider said.

    `retryable` marks transient failures (429, 5xx, timeouts, connection errors) worth trying
    again later, after `retry_after` seconds when the provider said so. Everything else (400,
    401, 402, 403, refusals, unusable answers) fails at once.

    `billed` is True when an answer arrived and was paid for although it cannot be used (no
    image, malformed data): it is booked all the same, with `cost` (usage.cost, None when the
    provider did not say) and `usage`.

    `in_doubt` is True when the request may have reached the provider and no answer came back
    (a timeout, a connection lost mid-call): OpenRouter bills a non-streaming call it finished
    whether or not anybody read it, so the call may have been billed. Its reservation is kept
    until the spending reconcile settles it (core.reconcile).

    `window` is a 429's rate window when the provider said it: (X-RateLimit-Limit, the calls
    it admits per window; X-RateLimit-Reset, when the oldest of them leaves it, in epoch
    seconds). The limiter paces the model's starts to it (core.ratelimit).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
        billed: bool = False,
        cost: Decimal | None = None,
        usage: dict | None = None,
        in_doubt: bool = False,
        window: tuple[int, float] | None = None,
    ):
        super().__init__(message)
        self.window = window
        self.retryable = retryable
        self.in_doubt = in_doubt
        self.retry_after = retry_after
        self.status = status  # the provider's HTTP status, when it answered
        self.billed = billed
        self.cost = cost
        self.usage = usage or {}

    def billed_by(self, response: Any) -> ProviderError:
        """This error, marked as billed with the usage of the answer that caused it."""
        self.billed, self.usage = True, usage_of(response)
        self.cost = cost_of(self.usage)
        return self


def client() -> openai.OpenAI:
    """This process's client for the current settings (tests point them at a local server)."""
    return _client_for(
        os.getpid(),
        settings.OPENROUTER_BASE_URL,
        settings.OPENROUTER_API_KEY,
        settings.OPENROUTER_SITE_URL,
        settings.OPENROUTER_APP_TITLE,
        float(settings.OPENROUTER_TIMEOUT),
    )


@functools.lru_cache(maxsize=4)
def _client_for(
    pid: int, base_url: str, api_key: str, site_url: str, title: str, timeout: float
) -> openai.OpenAI:
    # `pid` is part of the key: a worker forked from a process that already had a client must
    # not share its connection pool.
    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=0,
        timeout=timeout,
        default_headers={"HTTP-Referer": site_url, "X-Title": title},
    )


def request(create: Callable[..., T], **arguments: Any) -> T:
    """`create(**arguments)` (an SDK method of `client()`), its failures as ProviderError.

    A call of a model waits for one of the model's slots first (core.ratelimit) and reports
    how it went, so a 429 slows every worker down; a slot that does not come in time is a 429
    that never reached the provider. The thread's database connection is closed before, so a
    call that waits (for a slot, or for the answer: 10-30 s for an image) holds none; Django
    opens a new one at the next query. An answer that carries OpenRouter's error object (HTTP
    200 after generation started) is a failure too.
    """
    if not settings.OPENROUTER_API_KEY:
        raise ProviderError("OPENROUTER_API_KEY is not set", retryable=False)
    release_db_connection()
    model = arguments.get("model")
    try:
        with ratelimit.slot(model) if model else contextlib.nullcontext() as slot:
            try:
                return _call(create, arguments)
            except ProviderError as exc:
                if exc.status == 429 and slot is not None:
                    calls, reset = exc.window or (None, None)
                    slot.limited(exc.retry_after, window_calls=calls, window_reset=reset)
                raise
    except ratelimit.NoSlot as exc:
        raise ProviderError(str(exc), retryable=True, retry_after=exc.wait, status=429) from None


def release_db_connection() -> None:
    """Close this thread's database connection before a provider call; refuse a call made
    inside a transaction, which would hold its locks for the whole call.

    A test's own transaction (pytest-django wraps each test in one) is the exception: it
    stays open, as the test needs it.
    """
    if any(not block._from_testcase for block in connection.atomic_blocks):
        raise RuntimeError("a provider call must not be made inside a database transaction")
    if not connection.in_atomic_block and not connection.allow_thread_sharing:
        connection.close()


def _call(create: Callable[..., T], arguments: dict[str, Any]) -> T:
    try:
        response = create(**arguments)
    except openai.APIStatusError as exc:
        raise _status_error(exc) from None
    except openai.APITimeoutError:
        raise ProviderError(
            f"OpenRouter did not answer within {settings.OPENROUTER_TIMEOUT} s (the call may "
            "still be billed; the spending reconcile will tell)",
            retryable=True,
            in_doubt=True,
        ) from None
    except openai.APIConnectionError as exc:
        # A refused connection never carried the request; any other loss may have.
        refused = isinstance(_root_cause(exc), ConnectionRefusedError)
        raise ProviderError(
            f"cannot reach OpenRouter at {settings.OPENROUTER_BASE_URL}: {exc.__cause__ or exc}",
            retryable=True,
            in_doubt=not refused,
        ) from None
    except openai.OpenAIError as exc:
        raise ProviderError(f"OpenRouter request failed: {exc}", retryable=False) from None
    except ValueError as exc:  # a 200 labelled JSON that is not: the SDK lets json's error out
        raise ProviderError(
            f"OpenRouter's answer is not JSON: {exc}", retryable=False, status=200
        ) from None
    # OpenRouter's error object can come in an HTTP 200 answer, at the top or in a choice
    # (finish_reason "error"); an upstream 429 comes that way too, and paces like any other.
    choices = getattr(response, "choices", None)
    first = choices[0] if isinstance(choices, list) and choices else None
    for part in (response, first):
        error = (getattr(part, "model_extra", None) or {}).get("error")
        if error is not None:
            failure = error_in_answer(error)
            # An answer that failed after generation started is billed when it says its cost.
            raise failure.billed_by(response) if "cost" in usage_of(response) else failure
    return response


def error_in_answer(error: Any) -> ProviderError:
    """The ProviderError for an error object inside an HTTP 200 answer; its code is the status."""
    details = error if isinstance(error, dict) else {"message": str(error)}
    code = _status_code(details.get("code"))
    return provider_error(
        code or 200, details, head=f"OpenRouter error {details.get('code')} in an HTTP 200 answer"
    )


def _status_error(exc: openai.APIStatusError) -> ProviderError:
    body = exc.body  # the SDK has already unwrapped {"error": {...}}
    if not (isinstance(body, dict) and body.get("message")):  # not OpenRouter's shape: quote it
        body = {"message": str(body or exc.response.text or "")[:QUOTED_CHARS]}
    return provider_error(
        exc.status_code,
        body,
        head=f"OpenRouter {exc.status_code}",
        retry_after_header=exc.response.headers.get("retry-after"),
        reset_header=exc.response.headers.get("x-ratelimit-reset"),
        limit_header=exc.response.headers.get("x-ratelimit-limit"),
    )


def provider_error(
    status: int,
    error: dict,
    *,
    head: str,
    retry_after_header: str | None = None,
    reset_header: str | None = None,
    limit_header: str | None = None,
) -> ProviderError:
    """`head: message (provider X; reasons)` from an OpenRouter error object; transient
    statuses (408, 429, 5xx) are retryable, after the later of Retry-After and
    X-RateLimit-Reset (epoch milliseconds) when the provider sent them; with X-RateLimit-Limit
    as well, the error carries the provider's window."""
    metadata = error.get("metadata") if isinstance(error.get("metadata"), dict) else {}
    notes = [f"provider {metadata['provider_name']}"] if metadata.get("provider_name") else []
    if isinstance(metadata.get("reasons"), list):  # a moderation refusal says why
        notes.append("reasons: " + ", ".join(map(str, metadata["reasons"])))
    text = f"{head}: {error.get('message') or 'no message'}"
    text += f" ({'; '.join(notes)})" if notes else ""
    if status not in TRANSIENT_STATUSES:
        return ProviderError(text, retryable=False, status=status)
    cap = float(settings.OPENROUTER_MAX_RETRY_AFTER)
    waits = [
        wait
        for wait in (
            retry_after_seconds(retry_after_header, cap),
            reset_seconds(reset_header, cap),
        )
        if wait is not None
    ]
    retry_after = max(waits) if waits else None
    window = None
    if (calls := _status_code(limit_header)) and (reset := _epoch_ms(reset_header)):
        window = (calls, reset / 1000)
    return ProviderError(
        text, retryable=True, retry_after=retry_after, status=status, window=window
    )


def _status_code(code: Any) -> int | None:
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    digits = isinstance(code, str) and code.isascii() and code.isdigit()
    return int(code) if digits else None


def retry_after_seconds(value: str | None, cap: float) -> float | None:
    """Seconds to wait from a Retry-After header, capped; None when absent or not a number
    (OpenRouter sends seconds; an HTTP date falls back to the backoff)."""
    try:
        seconds = float(value or "")
    except ValueError:
        return None
    return min(max(seconds, 0.0), cap) if math.isfinite(seconds) else None


def reset_seconds(value: str | None, cap: float) -> float | None:
    """Seconds until an X-RateLimit-Reset (epoch milliseconds), capped; None when absent."""
    reset_ms = _epoch_ms(value)
    return None if reset_ms is None else min(max(reset_ms / 1000 - time.time(), 0.0), cap)


def _epoch_ms(value: str | None) -> float | None:
    try:
        reset_ms = float(value or "")
    except ValueError:
        return None
    return reset_ms if math.isfinite(reset_ms) and reset_ms > 0 else None


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def usage_of(response: Any) -> dict[str, Any]:
    """Token counts, OpenRouter's `cost` (credits, about USD) and the answer's generation id
    (`generation_id`, what OpenRouter's own records are looked up by), as plain JSON values."""
    usage = getattr(response, "usage", None)
    values = usage.model_dump() if hasattr(usage, "model_dump") else {}
    keys = ("prompt_tokens", "completion_tokens", "total_tokens", "cost")
    found = {key: values[key] for key in keys if values.get(key) is not None}
    generation_id = getattr(response, "id", None)
    if isinstance(generation_id, str) and generation_id:
        found["generation_id"] = generation_id[:200]
    return found


def account_usage() -> Decimal:
    """What OpenRouter says the key has spent, all time (`GET /key`, data.usage).

    Raises ProviderError when it cannot be read; the reconcile then tries again later.
    """
    data = _account_get("/key", {})
    return _credits(data.get("usage"), "the key's usage")


def generation_cost(generation_id: str) -> Decimal | None:
    """OpenRouter's total_cost of one generation (`GET /generation?id=`); None while its record
    is not there yet (it appears a few seconds after the call)."""
    try:
        data = _account_get("/generation", {"id": generation_id})
    except ProviderError as exc:
        if exc.status == 404:
            return None
        raise
    return _credits(data.get("total_cost"), f"generation {generation_id}'s total_cost")


def _account_get(path: str, params: dict[str, str]) -> dict[str, Any]:
    """GET one of OpenRouter's account routes through the SDK's client: its `data` object."""
    if not settings.OPENROUTER_API_KEY:
        raise ProviderError("OPENROUTER_API_KEY is not set", retryable=False)
    body = request(client().get, path=path, cast_to=object, options={"params": params})
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ProviderError(
            f"OpenRouter's {path} answer has no data object: {str(body)[:QUOTED_CHARS]}",
            retryable=True,
            status=200,
        )
    return data


def _credits(value: Any, what: str) -> Decimal:
    cost = cost_of({"cost": value})
    if cost is None:
        raise ProviderError(f"OpenRouter gave no number for {what}: {value!r}", retryable=True)
    return cost


def cost_of(usage: dict[str, Any]) -> Decimal | None:
    """usage.cost as a Decimal; None when missing or unreadable (the price table applies)."""
    value = usage.get("cost")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        return None
    return cost if cost.is_finite() and cost >= 0 else None
