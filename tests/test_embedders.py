"""Embedders: the offline descriptor finds look-alikes in the sample catalog, and the OpenRouter
embedder speaks the protocol through the one OpenRouter client and says whether a failure is
worth retrying (the index actors then retry it: see test_indexing)."""

from __future__ import annotations

import io
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from catalog.embedders import Embedder, get_embedder
from catalog.embedders.offline import OfflineEmbedder
from catalog.embedders.openrouter import OpenRouterEmbedder
from core.images import rgb_to_lab
from core.openrouter import ProviderError
from demo import sample
from tests.openrouter_server import OpenRouterServer, decode_data_uri, error_body

DIMENSION = 8


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def flatlay(garment: str, colour: str, pattern: str = "solid", seed: str = "test") -> bytes:
    return jpeg(sample.draw_flatlay(garment, sample.COLOURS[colour], pattern, seed=seed))


def main_colour(product: sample.Historical | sample.NewProduct) -> str:
    return product.color.partition(" and ")[0]


# --------------------------------------------------------------------------- offline


@pytest.fixture(scope="module")
def catalog_vectors(sample_catalog) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Offline vectors of the sample catalog's historical and new products, by sku / new_id."""
    catalog = sample_catalog
    embedder = OfflineEmbedder()

    def embed(paths: tuple[Path, ...]) -> dict[str, np.ndarray]:
        vectors = embedder.embed_images([path.read_bytes() for path in paths])
        return {path.stem: vector for path, vector in zip(paths, vectors, strict=True)}

    return embed(catalog.images), embed(catalog.new_images)


def test_offline_vectors_are_deterministic_unit_length_and_fixed_size():
    data = flatlay("midi_dress", "navy", "dots")
    embedder = OfflineEmbedder()
    first, second = embedder.embed_images([data]), embedder.embed_images([data])
    assert first[0].dtype == np.float32 and first[0].shape == (embedder.dimension,)
    assert np.array_equal(first[0], second[0])
    assert abs(float(np.linalg.norm(first[0])) - 1) < 1e-5
    assert re.fullmatch(r"[a-z0-9_]+", embedder.name) and embedder.is_offline


def test_offline_embeds_pngs_with_transparency_and_keeps_the_input_order():
    buffer = io.BytesIO()
    Image.new("RGBA", (60, 80), (200, 30, 40, 255)).save(buffer, format="PNG")
    red, blue = buffer.getvalue(), flatlay("tshirt", "sky blue")
    embedder = OfflineEmbedder()
    vectors = embedder.embed_images([red, blue, red])
    assert len(vectors) == 3 and np.array_equal(vectors[0], vectors[2])
    assert float(vectors[0] @ vectors[1]) < 0.99
    assert embedder.embed_images([]) == []


def test_offline_rejects_bytes_that_are_not_an_image():
    with pytest.raises(ProviderError, match="image 2 cannot be read") as caught:
        OfflineEmbedder().embed_images([flatlay("skirt", "red"), b"not an image"])
    assert caught.value.retryable is False


def test_each_new_products_nearest_historical_product_is_a_twin(catalog_vectors):
    historical, new = catalog_vectors
    by_sku = {p.sku: p for p in sample.HISTORICAL}
    for product in sample.NEW_PRODUCTS:
        nearest = max(historical, key=lambda sku: float(new[product.new_id] @ historical[sku]))
        assert (by_sku[nearest].garment, by_sku[nearest].color) == (product.garment, product.color)


def test_twins_rank_above_products_of_another_garment_and_colour(catalog_vectors):
    historical, new = catalog_vectors
    for product in sample.NEW_PRODUCTS:
        query = new[product.new_id]
        similarity = {sku: float(query @ vector) for sku, vector in historical.items()}
        twins = [
            p.sku
            for p in sample.HISTORICAL
            if (p.garment, p.color) == (product.garment, product.color)
        ]
        different = [
            p.sku
            for p in sample.HISTORICAL
            if p.garment != product.garment and main_colour(p) != main_colour(product)
        ]
        assert twins and different
        margin = min(similarity[s] for s in twins) - max(similarity[s] for s in different)
        assert margin > 0.05, product.new_id


def test_a_resized_recompressed_copy_is_nearly_identical():
    original = sample.draw_flatlay("cardigan", sample.COLOURS["burgundy"], "knit", seed="copy")
    copy = jpeg(original.resize((448, 560), Image.Resampling.LANCZOS), quality=75)
    first, second = OfflineEmbedder().embed_images([jpeg(original), copy])
    assert float(first @ second) > 0.98


@pytest.mark.parametrize(
    ("garment", "other_garment"),
    [
        ("midi_dress", "trousers"),
        ("tshirt", "maxi_dress"),
        ("jacket", "skirt"),
    ],
)
def test_a_new_colour_is_closer_than_a_new_colour_and_silhouette(garment, other_garment):
    anchor, recoloured, reshaped = OfflineEmbedder().embed_images(
        [
            flatlay(garment, "navy"),
            flatlay(garment, "mustard"),
            flatlay(other_garment, "sage green"),
        ]
    )
    assert float(anchor @ recoloured) > float(anchor @ reshaped)


# --------------------------------------------------------------------------- OpenRouter


@pytest.fixture
def server():
    with OpenRouterServer(dimension=DIMENSION) as running:
        yield running


@pytest.fixture
def openrouter_settings(settings, server, db):  # each call is booked in the spending ledger
    settings.EMBEDDER_BACKEND = "catalog.embedders.openrouter.OpenRouterEmbedder"
    settings.OPENROUTER_API_KEY = server.api_key
    settings.OPENROUTER_BASE_URL = server.base_url
    settings.OPENROUTER_SITE_URL = "https://shop.example"
    settings.OPENROUTER_APP_TITLE = "Promo studio tests"
    settings.OPENROUTER_TIMEOUT = 5
    settings.OPENROUTER_MAX_RETRY_AFTER = 30
    settings.EMBEDDING_MODEL = "nvidia/llama-nemotron-embed-vl-1b-v2"
    settings.EMBEDDING_DIMENSION = DIMENSION
    settings.EMBEDDING_BATCH_SIZE = 2
    return settings


@pytest.fixture
def embedder(openrouter_settings) -> OpenRouterEmbedder:
    """Built after the settings are final."""
    return OpenRouterEmbedder()


PHOTO_SIZES = [(1024, 1280), (1280, 720), (512, 640), (300, 200), (900, 900)]


def photos(count: int) -> list[bytes]:
    """Plain photos of distinct colours, most larger than the 512 px the provider is sent."""
    colours = ["navy", "red", "sage green", "mustard", "pink"]
    return [
        jpeg(Image.new("RGB", size, sample.COLOURS[colour]))
        for size, colour in zip(PHOTO_SIZES[:count], colours[:count], strict=True)
    ]


def failure(embedder: OpenRouterEmbedder) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        embedder.embed_images(photos(1))
    return caught.value


def test_requests_follow_the_protocol_in_batches(embedder, server):
    vectors = embedder.embed_images(photos(5))
    assert [r.path for r in server.requests] == ["/api/v1/embeddings"] * 3
    assert [len(r.json["input"]) for r in server.requests] == [2, 2, 1]
    for request in server.requests:
        assert request.json["model"] == "nvidia/llama-nemotron-embed-vl-1b-v2"
        assert request.json["encoding_format"] == "float"  # the SDK would ask for base64
        assert request.headers["authorization"] == f"Bearer {server.api_key}"
        assert request.headers["http-referer"] == "https://shop.example"
        assert request.headers["x-title"] == "Promo studio tests"
    sent = [item["content"] for request in server.requests for item in request.json["input"]]
    for parts, original in zip(sent, PHOTO_SIZES, strict=True):
        [part] = parts
        assert part["type"] == "image_url"
        assert part["image_url"]["url"].startswith("data:image/jpeg;base64,")
        image = decode_data_uri(part["image_url"]["url"])
        assert image.format == "JPEG" and max(image.size) == min(512, max(original))
    assert len(vectors) == 5
    for vector in vectors:
        assert vector.shape == (DIMENSION,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5


def test_the_embedder_uses_the_same_client_as_the_chat_providers(embedder, server):
    from core import openrouter

    embedder.embed_images(photos(1))
    assert openrouter.client() is openrouter.client()
    assert str(openrouter.client().base_url).rstrip("/") == server.base_url
    assert openrouter.client().max_retries == 0  # retries belong to the message, not the call


def test_vectors_keep_the_input_order_when_the_answer_is_shuffled(embedder, server):
    server.shuffle_data = True
    vectors = embedder.embed_images(photos(5))
    sent = [
        decode_data_uri(item["content"][0]["image_url"]["url"])
        for request in server.requests
        for item in request.json["input"]
    ]
    for vector, image in zip(vectors, sent, strict=True):
        expected = np.array(server.vector_for(image))
        assert np.allclose(vector, expected / np.linalg.norm(expected), atol=1e-6)
    assert float(vectors[0] @ vectors[1]) < 0.99  # distinct colours, distinct vectors


def test_a_rate_limit_is_retryable_after_the_providers_delay_without_waiting_here(embedder, server):
    server.fail_next(status=429, headers={"Retry-After": "7"})
    error = failure(embedder)
    assert error.retryable and error.retry_after == 7.0 and error.status == 429
    assert len(server.requests) == 1  # no sleep and no second call inside the worker


def test_retry_after_is_capped(embedder, server):
    server.fail_next(status=429, headers={"Retry-After": "3600"})
    assert failure(embedder).retry_after == 30.0


def test_a_server_error_is_retryable_with_the_backoff(embedder, server):
    server.fail_next(status=500)
    error = failure(embedder)
    assert error.retryable and error.retry_after is None and error.status == 500
    assert "OpenRouter 500: Scripted failure" in str(error) and len(server.requests) == 1


def test_a_timeout_is_retryable(openrouter_settings, server):
    openrouter_settings.OPENROUTER_TIMEOUT = 0.3
    server.fail_next(delay=30)  # answers long after the client stopped waiting
    error = failure(OpenRouterEmbedder())
    assert error.retryable and "did not answer within 0.3 s" in str(error)


def test_an_unreachable_server_is_a_retryable_error(openrouter_settings):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    openrouter_settings.OPENROUTER_BASE_URL = f"http://127.0.0.1:{port}/api/v1"
    error = failure(OpenRouterEmbedder())
    assert error.retryable and "cannot reach OpenRouter" in str(error)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "image_url is not supported by this model"),
        (401, "User not found."),
        (402, "Insufficient credits. Add more using https://openrouter.ai/credits"),
    ],
)
def test_client_errors_fail_at_once_with_the_providers_message(embedder, server, status, message):
    server.fail_next(status=status, json=error_body(status, message))
    error = failure(embedder)
    assert error.retryable is False and error.status == status
    assert f"OpenRouter {status}: {message}" in str(error)
    assert len(server.requests) == 1


def test_a_wrong_api_key_is_reported(openrouter_settings, server):
    openrouter_settings.OPENROUTER_API_KEY = "sk-or-wrong"
    error = failure(OpenRouterEmbedder())
    assert error.retryable is False and "OpenRouter 401: No auth credentials found" in str(error)
    assert len(server.requests) == 1


def valid_body(embedding: list[float] | None = None) -> dict:
    item = {"object": "embedding", "index": 0, "embedding": embedding or [0.5] * DIMENSION}
    return {"object": "list", "data": [item], "model": "m", "usage": {}}


@pytest.mark.parametrize(
    ("reply", "complaint"),
    [
        ({"body": b"<html>Bad gateway</html>"}, "not JSON"),
        ({"json": {"object": "list"}}, "no 'data' list"),
        ({"json": {"object": "list", "data": []}}, "0 embeddings for 1 images"),
        ({"json": valid_body([0.1] * (DIMENSION + 1))}, f"{DIMENSION + 1} dimensions"),
        ({"json": valid_body(["0.1"] * DIMENSION)}, "not a list of numbers"),
        ({"json": valid_body([0.0] * DIMENSION)}, "all zeros"),
        ({"json": {"data": [{"index": 3, "embedding": [0.5] * DIMENSION}]}}, "index 3"),
        ({"json": error_body(400, "Provider rejected the input")}, "Provider rejected the input"),
    ],
)
def test_malformed_answers_are_errors(embedder, server, reply, complaint):
    server.fail_next(**reply)
    with pytest.raises(ProviderError, match=re.escape(complaint)) as caught:
        embedder.embed_images(photos(1))
    assert caught.value.retryable is False and len(server.requests) == 1


def test_a_transient_error_inside_a_200_answer_is_retryable(embedder, server):
    server.fail_next(status=200, json=error_body(502, "Upstream provider error"))
    error = failure(embedder)
    assert error.retryable and "Upstream provider error" in str(error)


def test_the_test_server_rejects_requests_that_break_the_protocol(server):
    text_only = {"model": "m", "input": [{"content": [{"type": "text", "text": "a dress"}]}]}
    response = requests.post(
        f"{server.base_url}/embeddings",
        json=text_only,
        timeout=5,
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    assert response.status_code == 400
    assert "image_url" in response.json()["error"]["message"]


# --------------------------------------------------------------------------- choosing


def test_get_embedder_builds_the_backend_named_in_settings(settings):
    settings.EMBEDDER_BACKEND = "catalog.embedders.offline.OfflineEmbedder"
    offline = get_embedder()
    assert isinstance(offline, OfflineEmbedder) and get_embedder() is offline

    settings.EMBEDDER_BACKEND = "catalog.embedders.openrouter.OpenRouterEmbedder"
    settings.EMBEDDING_DIMENSION = 16
    remote = get_embedder()
    assert isinstance(remote, OpenRouterEmbedder) and isinstance(remote, Embedder)
    assert remote.dimension == 16 and not remote.is_offline
    settings.EMBEDDING_DIMENSION = 32
    assert get_embedder() is not remote and get_embedder().dimension == 32


@pytest.mark.parametrize(
    "model",
    [
        "nvidia/llama-nemotron-embed-vl-1b-v2",
        "some-lab/an-extremely-long-multimodal-embedding-model-name-v3:free",
    ],
)
def test_openrouter_names_identify_model_and_dimension(openrouter_settings, model):
    openrouter_settings.EMBEDDING_MODEL = model
    openrouter_settings.EMBEDDING_DIMENSION = 2048
    name = OpenRouterEmbedder().name
    assert re.fullmatch(r"openrouter_[a-z0-9_]+_2048", name) and len(name) <= 60
    if model.startswith("nvidia"):
        assert name == "openrouter_nvidia_llama_nemotron_embed_vl_1b_v2_2048"


def worn_garment(shirt: tuple[int, int, int]) -> bytes:
    """A shirt worn by a model on a white sweep: face, neck, arms and legs show more skin
    than there is shirt, so the skin would be the photo's main colour."""
    from PIL import ImageDraw

    image = Image.new("RGB", (160, 200), "white")
    draw = ImageDraw.Draw(image)
    skin = (224, 172, 140)
    draw.ellipse((58, 4, 102, 52), fill=skin)  # face
    draw.rectangle((70, 48, 90, 62), fill=skin)  # neck
    draw.rectangle((22, 62, 44, 130), fill=skin)  # bare arms
    draw.rectangle((116, 62, 138, 130), fill=skin)
    draw.rectangle((54, 130, 74, 160), fill=skin)  # legs below the hem
    draw.rectangle((86, 130, 106, 160), fill=skin)
    draw.rectangle((46, 60, 114, 132), fill=shirt)
    return jpeg(image)


def lab(rgb: tuple[int, int, int]) -> np.ndarray:
    return rgb_to_lab(np.array(rgb) / 255)


@pytest.mark.parametrize("shirt", [(31, 42, 77), (30, 30, 32), (190, 36, 44), (112, 150, 80)])
def test_the_colour_is_read_from_the_garment_not_the_skin_around_it(shirt):
    embedder = OfflineEmbedder()
    [vector] = embedder.embed_images([worn_garment(shirt)])

    colour = embedder.garment_colour(vector)

    assert np.linalg.norm(colour - lab(shirt)) < 4  # JPEG and resampling move it a little
    assert np.linalg.norm(colour - lab((224, 172, 140))) > 20  # far from the skin


def test_a_skin_toned_garment_keeps_its_colour():
    embedder = OfflineEmbedder()
    image = Image.new("RGB", (160, 200), "white")
    image.paste((222, 170, 138), (40, 30, 120, 170))  # a beige dress, no model

    [vector] = embedder.embed_images([jpeg(image)])

    assert np.linalg.norm(embedder.garment_colour(vector) - lab((222, 170, 138))) < 4


def test_the_carried_colour_leaves_the_look_alike_ranking_alone(catalog_vectors):
    """The garment colour rides in the vector at a weight too small to reorder neighbours."""
    historical, _ = catalog_vectors
    vectors = np.stack(list(historical.values()))
    without = vectors.copy()
    without[:, :4] = 0
    without /= np.linalg.norm(without, axis=1, keepdims=True)

    assert np.abs(vectors @ vectors.T - without @ without.T).max() < 0.002


def test_an_embedder_that_measures_no_colour_reads_none():
    assert Embedder.measures_colour is False
    assert Embedder().garment_colour(np.ones(DIMENSION, dtype=np.float32)) is None
