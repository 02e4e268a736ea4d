"""Colour words come from the catalog's own colour values and the colours of their photos."""

import numpy as np
import pytest

from catalog.colours import colour_words
from catalog.embedders import get_embedder
from catalog.images import image_prepare
from catalog.indexing import embeddings_for, index_check, index_rebuild, products_sync
from catalog.models import ColourVocabulary, Product
from catalog.selectors import similar_bestsellers
from catalog.services import product_save
from catalog.sparse import query_document
from core.images import rgb_to_lab
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db

OXBLOOD, SKY, TEAL = (74, 10, 18), (135, 190, 235), (0, 128, 128)


def product(sku: str, rgb: tuple[int, int, int], *, color: str = "", **fields) -> Product:
    """A product whose photo is all one colour; with a colour value it is a bestseller."""
    fields.setdefault("category", "dress")
    fields.setdefault("sales_count", 3000 if color else 0)
    return product_save(
        product=Product(sku=sku, color=color, **fields), image=image_prepare(image_bytes(rgb))
    )


def words_of(new: Product) -> list[str]:
    embedder = get_embedder()
    return colour_words(embedder=embedder, vector=embeddings_for([new], embedder)[new.image_sha256])


def vocabulary() -> dict[str, list[float]]:
    return ColourVocabulary.objects.get(embedder=get_embedder().name).colours


def test_the_catalogs_colour_values_are_the_words_each_with_its_photos_colour(milvus):
    product("A1", OXBLOOD, color="Oxblood")
    product("A2", (80, 14, 22), color="oxblood")  # grouped as typed, case aside
    product("B1", SKY, color="sky")
    product("B2", (140, 194, 238), color=" Sky ")
    product("C1", TEAL, color="teal")  # on one product only: one photo is no reference

    index_rebuild()

    colours = vocabulary()
    assert set(colours) == {"oxblood", "sky"}
    assert colours["oxblood"]["products"] == 2 and colours["sky"]["products"] == 2
    sky = rgb_to_lab(np.array([SKY, (140, 194, 238)]) / 255)
    assert np.linalg.norm(np.array(colours["sky"]["colour"]) - sky.mean(axis=0)) < 3


def test_a_new_products_query_takes_the_nearest_catalog_colour(milvus):
    for i, (rgb, color) in enumerate([(OXBLOOD, "oxblood")] * 2 + [(SKY, "sky")] * 2):
        product(f"H{i}", rgb, color=color)
    index_rebuild()
    dark_red = product("NEW1", (96, 20, 30), prompt_hint="city street at night")
    pale_blue = product("NEW2", (160, 200, 230))

    assert words_of(dark_red) == ["oxblood"]
    assert words_of(pale_blue) == ["sky"]
    assert query_document(dark_red, words_of(dark_red)) == "dress city street at night oxblood"
    # The word reaches the search: the oxblood bestsellers lead for the dark red photo.
    top = similar_bestsellers(product=dark_red, top_k=2).hits
    assert {hit.product.color for hit in top} == {"oxblood"}


@pytest.mark.parametrize("catalog", ["empty", "no colours"])
def test_a_catalog_without_colours_gives_no_colour_word(milvus, catalog):
    if catalog == "no colours":
        product("H1", OXBLOOD, sales_count=3000)
        product("H2", SKY, sales_count=3000)
    index_rebuild()
    new = product("NEW1", (96, 20, 30))

    assert vocabulary() == {}
    assert words_of(new) == []


def test_a_rebuild_renews_the_words_and_a_search_sees_them(milvus):
    product("A1", OXBLOOD, color="oxblood")
    product("A2", OXBLOOD, color="oxblood")
    index_rebuild()
    new = product("NEW1", SKY)
    assert words_of(new) == ["oxblood"]  # the only word there is

    product("B1", SKY, color="sky")
    product("B2", SKY, color="sky")
    index_rebuild()

    assert words_of(new) == ["sky"]


def test_an_index_filled_by_syncs_gets_its_words_from_the_reconcile(milvus):
    products = [product(f"H{i}", SKY, color="sky") for i in range(2)]
    products_sync(product_ids=[p.pk for p in products])
    new = product("NEW1", SKY)
    assert words_of(new) == []

    index_check(repair=True)

    assert words_of(new) == ["sky"]


def test_a_colour_value_that_varies_a_lot_claims_photos_further_from_its_median(milvus):
    """Navy, black and sky photos each agree closely; "multi" ones do not, so a mauve photo,
    nearer navy's median than multi's, is still likelier a multi than a navy."""
    for word, rgb in (("navy", (31, 42, 77)), ("black", (30, 30, 32)), ("sky", SKY)):
        for i, shift in enumerate((-3, 0, 3)):
            product(f"{word}{i}", tuple(v + shift for v in rgb), color=word)
    for i, rgb in enumerate([(200, 40, 40), (40, 160, 60), (40, 60, 200), (230, 200, 40)]):
        product(f"multi{i}", rgb, color="multi")
    index_rebuild()
    mauve = (100, 80, 120)
    colours, mauve_lab = vocabulary(), rgb_to_lab(np.array(mauve) / 255)

    def distance(word: str) -> float:
        return float(np.linalg.norm(np.array(colours[word]["colour"]) - mauve_lab))

    assert distance("navy") < distance("multi") / 2
    assert words_of(product("NEW1", mauve)) == ["multi"]
    assert words_of(product("NEW2", (36, 46, 84))) == ["navy"]
