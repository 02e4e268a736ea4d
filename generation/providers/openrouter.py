"""The OpenRouter providers: a vision-language model as style analyst and Nano Banana 2 as image
generator, both through OpenRouter's OpenAI-compatible /chat/completions with the openai SDK.

Model ids are read from settings at each call, so switching models is a settings change. Every
failure leaves this module as a ProviderError that quotes what OpenRouter said and says whether
waiting may help (the pipeline schedules the retries; the SDK's own stay few).
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import os
from decimal import Decimal, InvalidOperation
from typing import Any

import openai
from django.conf import settings
from openai.types.chat import ChatCompletion

# Shared with the OpenRouter embedder so both classify failures alike.
from catalog.embedders import TRANSIENT_STATUSES, retry_after_seconds
from generation.prompts import generation_prompt, style_analysis_prompt
from generation.providers.base import (
    GeneratedImage,
    ImageGenerator,
    ImageRequest,
    ProviderError,
    StyleAnalyst,
    StyleRequest,
    StyleResult,
)
from generation.providers.offline import decode_image

MAX_SIDE, JPEG_QUALITY = 1024, 85  # input images as the seed sent them
QUOTED_CHARS = 300  # how much of a model's text an error message quotes


class OpenRouterStyleAnalyst(StyleAnalyst):
    """A vision-language model (settings.STYLE_ANALYST_MODEL) looks at the bestseller photos and
    writes one image-generation prompt in their style."""

    MAX_TOKENS, TEMPERATURE = 512, 0.7

    @property
    def model(self) -> str:  # type: ignore[override]
        return settings.STYLE_ANALYST_MODEL

    def analyse(self, request: StyleRequest) -> StyleResult:
        model = self.model
        content = [image_part(ref.content, f"reference {n}")
                   for n, ref in enumerate(request.references, 1)]
        content.append({"type": "text", "text": style_analysis_prompt(request)})
        response = _complete(model=model, messages=[{"role": "user", "content": content}],
                             max_tokens=self.MAX_TOKENS, temperature=self.TEMPERATURE)
        message = response.choices[0].message
        text = _text(message).strip()
        if not text:
            raise ProviderError(f"{model} returned no style prompt ({_said(response)})",
                                retryable=False, status=200)
        usage = _usage(response)
        return StyleResult(prompt=text, model=model, cost=_cost(usage), usage=usage)


class OpenRouterImageGenerator(ImageGenerator):
    """Nano Banana 2 (settings.IMAGE_GENERATOR_MODEL) draws the promo photo from the flat-lay,
    the reference photos and the final prompt, at the preset's aspect ratio and size tier.

    One image per call: more is not reliably supported on this route.
    """

    @property
    def model(self) -> str:  # type: ignore[override]
        return settings.IMAGE_GENERATOR_MODEL

    def generate(self, request: ImageRequest) -> GeneratedImage:
        model, prompt = self.model, generation_prompt(request)
        content = [image_part(request.product_image, "the flat-lay"),
                   *(image_part(ref.content, f"reference {n}")
                     for n, ref in enumerate(request.references, 1)),
                   {"type": "text", "text": prompt}]
        response = _complete(
            model=model, messages=[{"role": "user", "content": content}],
            # OpenRouter-only fields; `modalities` too, as the SDK's type allows no "image".
            extra_body={"modalities": ["image", "text"],
                        "image_config": {"aspect_ratio": request.aspect_ratio,
                                         "image_size": request.size_tier}})
        message = response.choices[0].message
        urls = _image_urls(message)
        if not urls:
            raise ProviderError(f"{model} returned no image ({_said(response)})",
                                retryable=False, status=200)
        usage = _usage(response)
        return GeneratedImage(content=_decode_data_uri(urls[0]), prompt=prompt, model=model,
                              cost=_cost(usage), usage=usage, text=_text(message).strip())


def image_part(data: bytes, label: str) -> dict[str, Any]:
    """An image_url content part: the photo as a JPEG data URI, longest side at most 1024 px."""
    buffer = io.BytesIO()
    decode_image(data, label, max_side=MAX_SIDE).save(buffer, "JPEG", quality=JPEG_QUALITY)
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": url}}


# --------------------------------------------------------------------------- the call

def _client() -> openai.OpenAI:
    """This process's client for the current settings (tests point them at a local server)."""
    return _client_for(os.getpid(), settings.OPENROUTER_BASE_URL, settings.OPENROUTER_API_KEY,
                       settings.OPENROUTER_SITE_URL, settings.OPENROUTER_APP_TITLE,
                       int(settings.OPENROUTER_SDK_MAX_RETRIES), float(settings.OPENROUTER_TIMEOUT))


@functools.lru_cache(maxsize=4)
def _client_for(pid: int, base_url: str, api_key: str, site_url: str, title: str,
                max_retries: int, timeout: float) -> openai.OpenAI:
    # `pid` is part of the key: a worker forked from a process that already had a client must
    # not share its connection pool.
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=max_retries,
                         timeout=timeout,
                         default_headers={"HTTP-Referer": site_url, "X-Title": title})


def _complete(**arguments: Any) -> ChatCompletion:
    """A chat completion with at least one choice, or a ProviderError."""
    if not settings.OPENROUTER_API_KEY:
        raise ProviderError("OPENROUTER_API_KEY is not set", retryable=False)
    try:
        response = _client().chat.completions.create(**arguments)
    except openai.APIStatusError as exc:
        raise _status_error(exc) from None
    except openai.APITimeoutError:
        raise ProviderError(f"OpenRouter did not answer within {settings.OPENROUTER_TIMEOUT} s",
                            retryable=True) from None
    except openai.APIConnectionError as exc:
        raise ProviderError(f"cannot reach OpenRouter at {settings.OPENROUTER_BASE_URL}: "
                            f"{exc.__cause__ or exc}", retryable=True) from None
    except openai.OpenAIError as exc:
        raise ProviderError(f"OpenRouter request failed: {exc}", retryable=False) from None
    except ValueError as exc:  # a 200 labelled JSON that is not: the SDK lets json's error out
        raise ProviderError(f"OpenRouter's answer is not JSON: {exc}", retryable=False,
                            status=200) from None
    _check_answer(response)
    return response


def _status_error(exc: openai.APIStatusError) -> ProviderError:
    body = exc.body  # the SDK has already unwrapped {"error": {...}}
    if not (isinstance(body, dict) and body.get("message")):  # not OpenRouter's shape: quote it
        body = {"message": str(body or "")[:QUOTED_CHARS]}
    return _provider_error(exc.status_code, body, head=f"OpenRouter {exc.status_code}",
                           retry_after_header=exc.response.headers.get("retry-after"))


def _check_answer(response: Any) -> None:
    """OpenRouter reports failures after generation started inside an HTTP 200 answer."""
    if not isinstance(response, ChatCompletion):
        raise ProviderError(f"OpenRouter's answer is not a chat completion: "
                            f"{str(response)[:QUOTED_CHARS]!r}", retryable=False, status=200)
    error = (response.model_extra or {}).get("error")
    choices = getattr(response, "choices", None)
    if error is None and choices:  # a choice can carry the error too (finish_reason "error")
        error = (choices[0].model_extra or {}).get("error")
    if error is not None:
        details = error if isinstance(error, dict) else {"message": str(error)}
        code = _status_code(details.get("code"))
        raise _provider_error(code or 200, details,
                              head=f"OpenRouter error {details.get('code')} in an HTTP 200 answer")
    if not choices or getattr(choices[0], "message", None) is None:
        raise ProviderError("OpenRouter answered HTTP 200 without a choice", retryable=False,
                            status=200)


def _provider_error(status: int, error: dict, *, head: str,
                    retry_after_header: str | None = None) -> ProviderError:
    """`head: message (provider X; reasons)` from an OpenRouter error object; transient
    statuses (408, 429, 5xx) are retryable."""
    metadata = error.get("metadata") if isinstance(error.get("metadata"), dict) else {}
    notes = [f"provider {metadata['provider_name']}"] if metadata.get("provider_name") else []
    if isinstance(metadata.get("reasons"), list):  # a moderation refusal says why
        notes.append("reasons: " + ", ".join(map(str, metadata["reasons"])))
    text = f"{head}: {error.get('message') or 'no message'}"
    text += f" ({'; '.join(notes)})" if notes else ""
    if status not in TRANSIENT_STATUSES:
        return ProviderError(text, retryable=False, status=status)
    retry_after = retry_after_seconds(retry_after_header, float(settings.OPENROUTER_MAX_RETRY_AFTER))
    return ProviderError(text, retryable=True, retry_after=retry_after, status=status)


def _status_code(code: Any) -> int | None:
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    return int(code) if isinstance(code, str) and code.isdigit() else None


# --------------------------------------------------------------------------- reading answers

def _field(value: Any, name: str) -> Any:
    """A field of a dict or of an SDK object (unknown fields stay plain dicts in the SDK)."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _text(message: Any) -> str:
    content = _field(message, "content")
    if isinstance(content, list):  # the parts form, text beside images
        return "\n".join(part_text for part in content
                         if _field(part, "type") == "text"
                         and isinstance(part_text := _field(part, "text"), str))
    return content if isinstance(content, str) else ""


def _said(response: ChatCompletion) -> str:
    """What the model answered instead, for an error message: its text, refusal, finish."""
    choice = response.choices[0]
    text, refusal = _text(choice.message).strip(), _field(choice.message, "refusal")
    said = [f"finish_reason {_field(choice, 'finish_reason')!r}"]
    if refusal:
        said.append(f"refusal: {str(refusal)[:QUOTED_CHARS]!r}")
    said.append(f"text: {text[:QUOTED_CHARS]!r}" if text else "no text")
    return "; ".join(said)


def _image_urls(message: Any) -> list[str]:
    """The image URLs of an answer: `message.images`, then image_url parts of `content`."""
    parts = list(_field(message, "images") or [])
    content = _field(message, "content")
    if isinstance(content, list):
        parts += [part for part in content if _field(part, "type") == "image_url"]
    urls = (_field(_field(part, "image_url"), "url") for part in parts)
    return [url for url in urls if isinstance(url, str)]


def _decode_data_uri(url: str) -> bytes:
    header, comma, payload = url.partition(",")
    if not (comma and header.startswith("data:image/") and header.endswith(";base64")):
        raise ProviderError(f"the returned image is not a base64 data URI: {url[:80]!r}",
                            retryable=False, status=200)
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ProviderError("the returned image is malformed base64 and cannot be decoded",
                            retryable=False, status=200) from None


def _usage(response: ChatCompletion) -> dict[str, Any]:
    """Token counts and OpenRouter's `cost` (credits, about USD), as plain JSON values."""
    usage = getattr(response, "usage", None)
    values = usage.model_dump() if usage is not None else {}
    keys = ("prompt_tokens", "completion_tokens", "total_tokens", "cost")
    return {key: values[key] for key in keys if values.get(key) is not None}


def _cost(usage: dict[str, Any]) -> Decimal | None:
    """usage.cost as a Decimal; None when missing or unreadable (the price table applies)."""
    value = usage.get("cost")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        return None
    return cost if cost.is_finite() and cost >= 0 else None
