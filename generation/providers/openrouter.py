"""The OpenRouter providers: a vision-language model as style analyst and Nano Banana 2 as image
generator, both through OpenRouter's OpenAI-compatible /chat/completions on the one client of
core.openrouter.

Model ids are read from settings at each call, so switching models is a settings change. Every
failure leaves this module as a ProviderError that quotes what OpenRouter said and says whether
waiting may help (who retries is written in core.openrouter).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

import jsonschema
from django.conf import settings
from openai.types.chat import ChatCompletion

from core import openrouter
from core.openrouter import QUOTED_CHARS, cost_of, usage_of
from generation.prompts import generation_prompt, image_roles, quality_prompt, style_analysis_prompt
from generation.providers.base import (
    CheckResult,
    GeneratedImage,
    ImageGenerator,
    ImageRequest,
    ProviderError,
    QualityChecker,
    QualityReport,
    QualityRequest,
    Stage,
    StyleAnalyst,
    StyleRequest,
    StyleResult,
)
from generation.providers.offline import decode_image

MAX_SIDE, JPEG_QUALITY = 1024, 85  # input images as the seed sent them


class OpenRouterStyleAnalyst(StyleAnalyst):
    """A vision-language model (settings.STYLE_ANALYST_MODEL) looks at the bestseller photos and
    writes one image-generation prompt in their style."""

    MAX_TOKENS, TEMPERATURE = 512, 0.7

    @property
    def model(self) -> str:  # type: ignore[override]
        return settings.STYLE_ANALYST_MODEL

    def analyse(self, request: StyleRequest) -> StyleResult:
        model = self.model
        content = [
            image_part(ref.content, f"reference {n}") for n, ref in enumerate(request.references, 1)
        ]
        content.append({"type": "text", "text": style_analysis_prompt(request)})
        response = _complete(
            model=model,
            messages=[{"role": "user", "content": content}],
            max_tokens=self.MAX_TOKENS,
            temperature=self.TEMPERATURE,
        )
        message = response.choices[0].message
        text = _text(message).strip()
        if not text:
            raise ProviderError(
                f"{model} returned no style prompt ({_said(response)})", retryable=False, status=200
            ).billed_by(response)
        usage = usage_of(response)
        return StyleResult(prompt=text, model=model, cost=cost_of(usage), usage=usage)


class OpenRouterImageGenerator(ImageGenerator):
    """Nano Banana 2 (settings.IMAGE_GENERATOR_MODEL) draws the promo photo from the flat-lay,
    the reference photos and the final prompt, at the preset's aspect ratio and size tier.

    Each input image follows a text part that names its role (the product, style reference n
    of K, the scene), and the prompt lists the roles again. A staged preset makes two calls:
    the scene from the references, then the product from the flat-lay and that scene.
    One image per call: more is not reliably supported on this route.
    """

    @property
    def model(self) -> str:  # type: ignore[override]
        return settings.IMAGE_GENERATOR_MODEL

    def generate(self, request: ImageRequest) -> GeneratedImage:
        model, prompt = self.model, generation_prompt(request)
        content = []
        for role, (image, label) in zip(image_roles(request), _inputs(request), strict=True):
            content += [{"type": "text", "text": role}, image_part(image, label)]
        content.append({"type": "text", "text": prompt})
        response = _complete(
            model=model,
            messages=[{"role": "user", "content": content}],
            # OpenRouter-only fields; `modalities` too, as the SDK's type allows no "image".
            extra_body={
                "modalities": ["image", "text"],
                "image_config": {
                    "aspect_ratio": request.aspect_ratio,
                    "image_size": request.size_tier,
                },
            },
        )
        message = response.choices[0].message
        urls = _image_urls(message)
        if not urls:
            raise ProviderError(
                f"{model} returned no image ({_said(response)})", retryable=False, status=200
            ).billed_by(response)
        try:
            content = _decode_data_uri(urls[0])
        except ProviderError as exc:
            raise exc.billed_by(response) from None
        usage = usage_of(response)
        return GeneratedImage(
            content=content,
            prompt=prompt,
            model=model,
            cost=cost_of(usage),
            usage=usage,
            text=_text(message).strip(),
        )


def _inputs(request: ImageRequest) -> list[tuple[bytes, str]]:
    """The input images of an image call, in image_roles' order, with names for errors."""
    references = [(ref.content, f"reference {n}") for n, ref in enumerate(request.references, 1)]
    if request.stage == Stage.SCENE:
        return references
    if request.stage == Stage.PRODUCT:
        if not request.scene_image:
            raise ValueError("the product stage needs the scene image")
        return [(request.product_image, "the flat-lay"), (request.scene_image, "the scene")]
    return [(request.product_image, "the flat-lay"), *references]


class OpenRouterQualityChecker(QualityChecker):
    """A vision model (settings.QUALITY_CHECK_MODEL) compares the generated image with the
    flat-lay and the channel's rules and answers JSON of `report_schema`, asked for as a
    structured output and validated here: an answer that is not valid JSON of the schema
    raises a billed ProviderError quoting it (the pipeline asks again, then gives up)."""

    MAX_TOKENS = 700

    @property
    def model(self) -> str:  # type: ignore[override]
        return settings.QUALITY_CHECK_MODEL

    def check(self, request: QualityRequest) -> QualityReport:
        model, names = self.model, request.checks()
        schema = report_schema(names)
        content = [
            {"type": "text", "text": "Image 1: the flat-lay of the garment."},
            image_part(request.product_image, "the flat-lay"),
            {"type": "text", "text": "Image 2: the generated promotional photo."},
            image_part(request.image, "the generated image"),
            {"type": "text", "text": quality_prompt(request)},
        ]
        response = _complete(
            model=model,
            messages=[{"role": "user", "content": content}],
            max_tokens=self.MAX_TOKENS,
            temperature=0,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "quality_report", "strict": True, "schema": schema},
            },
        )
        text = _text(response.choices[0].message).strip()
        try:
            checks = parse_report(text, names)
        except ValueError as exc:
            raise ProviderError(
                f"{model} gave no valid quality report ({exc}); it answered: "
                f"{text[:QUOTED_CHARS]!r}",
                retryable=False,
                status=200,
            ).billed_by(response) from None
        usage = usage_of(response)
        return QualityReport(checks=checks, model=model, cost=cost_of(usage), usage=usage)


def report_schema(names: list[str]) -> dict[str, Any]:
    """The JSON schema of a quality report with one verdict for each of `names`."""
    verdict = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "passed", "score", "note"],
        "properties": {
            "name": {"type": "string", "enum": names},
            "passed": {"type": "boolean"},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "note": {"type": "string", "maxLength": 600},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["checks"],
        "properties": {
            "checks": {
                "type": "array",
                "items": verdict,
                "minItems": len(names),
                "maxItems": len(names),
            }
        },
    }


def parse_report(text: str, names: list[str]) -> list[CheckResult]:
    """The verdicts of a quality report, in `names` order; ValueError says what is wrong."""
    try:
        report = json.loads(_without_fence(text))
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(report_schema(names)).iter_errors(report)
    )
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "the answer"
        raise ValueError(f"{where}: {error.message}")
    verdicts = {item["name"]: item for item in report["checks"]}
    if sorted(verdicts) != sorted(names):
        raise ValueError(f"expected one verdict for each of {', '.join(names)}")
    return [
        CheckResult(
            name,
            verdicts[name]["passed"],
            float(verdicts[name]["score"]),
            verdicts[name]["note"].strip(),
        )
        for name in names
    ]


def _without_fence(text: str) -> str:
    """Some models wrap JSON in a Markdown code fence even when asked not to."""
    fenced = text.strip()
    if fenced.startswith("```") and fenced.endswith("```"):
        fenced = fenced[3:-3].removeprefix("json").strip()
    return fenced


def image_part(data: bytes, label: str) -> dict[str, Any]:
    """An image_url content part: the photo as a JPEG data URI, longest side at most 1024 px."""
    buffer = io.BytesIO()
    decode_image(data, label, max_side=MAX_SIDE).save(buffer, "JPEG", quality=JPEG_QUALITY)
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": url}}


# --------------------------------------------------------------------------- the call


def _complete(**arguments: Any) -> ChatCompletion:
    """A chat completion with at least one choice, or a ProviderError."""
    response = openrouter.request(openrouter.client().chat.completions.create, **arguments)
    if not isinstance(response, ChatCompletion):
        raise ProviderError(
            f"OpenRouter's answer is not a chat completion: {str(response)[:QUOTED_CHARS]!r}",
            retryable=False,
            status=200,
        )
    choices = getattr(response, "choices", None)  # an error in a choice was raised already
    if not choices or getattr(choices[0], "message", None) is None:
        raise ProviderError(
            "OpenRouter answered HTTP 200 without a choice", retryable=False, status=200
        )
    return response


# --------------------------------------------------------------------------- reading answers


def _field(value: Any, name: str) -> Any:
    """A field of a dict or of an SDK object (unknown fields stay plain dicts in the SDK)."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _text(message: Any) -> str:
    content = _field(message, "content")
    if isinstance(content, list):  # the parts form, text beside images
        return "\n".join(
            part_text
            for part in content
            if _field(part, "type") == "text" and isinstance(part_text := _field(part, "text"), str)
        )
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
        raise ProviderError(
            f"the returned image is not a base64 data URI: {url[:80]!r}",
            retryable=False,
            status=200,
        )
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ProviderError(
            "the returned image is malformed base64 and cannot be decoded",
            retryable=False,
            status=200,
        ) from None
