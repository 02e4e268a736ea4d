"""/api/v1/products: list (the admin's filters, cursor pages), get, create or update by SKU,
in bulk, and sales updates. Writes go through the CSV import's cleaning and writing
(catalog.importer.items), so both accept the same values and word their errors alike."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.shortcuts import get_object_or_404
from ninja import Field, File, Query, Router, Schema, Status, UploadedFile
from pydantic import ConfigDict

from catalog.images import ImageRejected
from catalog.importer.items import ItemsConflict, ItemsResult, products_write, upload_store
from catalog.importer.results import ImportAction
from catalog.models import IndexState, Product, bestseller_threshold
from core.api.auth import require
from core.api.pages import page
from core.api.problems import ApiProblem
from core.models import ApiScope

router = Router(tags=["products"])
uploads = Router(tags=["products"])

VIEW, ADD, CHANGE = "catalog.view_product", "catalog.add_product", "catalog.change_product"
# What a CSV cell may be: the import's cleaning reads it as the cell's text, so a price may
# come as 49.9 or "49.90" and a wrong one is told in the import's words.
Cell = str | int | float | None


class ProductOut(Schema):
    sku: str
    name: str
    category: str
    color: str
    style: str
    season: str
    description: str
    prompt_hint: str
    price: Decimal | None
    sales_count: int
    lifecycle: Product.Lifecycle
    index_state: IndexState
    image_url: str | None
    image_width: int
    image_height: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_image_url(product: Product, context) -> str | None:
        if not product.image:
            return None
        return context["request"].build_absolute_uri(product.image.url)


class ProductPage(Schema):
    items: list[ProductOut]
    next: str | None = Field(description="The next page's address; null on the last page.")


class ProductFilters(Schema):
    category: str | None = None
    style: str | None = None
    season: str | None = None
    lifecycle: Product.Lifecycle | None = None
    index_state: IndexState | None = None
    bestseller: bool | None = Field(None, description="More sales than the bestseller line.")
    updated_since: datetime | None = Field(None, description="Changed at or after this time.")
    cursor: str | None = Field(None, description="From the previous page's `next`.")
    limit: int = Field(50, ge=1, le=settings.API_PAGE_SIZE_MAX)


class ProductFields(Schema):
    """A product's fields as the CSV import takes them; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    name: Cell = None
    category: Cell = Field(None, description="Required for a new product.")
    color: Cell = None
    style: Cell = None
    season: Cell = None
    description: Cell = None
    prompt_hint: Cell = None
    price: Cell = Field(None, description="e.g. 49.90; at most two decimals.")
    sales_count: Cell = None
    lifecycle: Cell = Field(
        None, description="'historical' or 'new'; left out, an existing product keeps its own."
    )
    image: str | None = Field(
        None,
        description="The photo as URL-safe base64 (JPEG, PNG or WebP); required for a new "
        "product, left out to keep the current one.",
    )
    image_upload: str | None = Field(
        None, description="Instead of `image`: the id of a photo sent to /api/v1/uploads."
    )


class ProductItem(ProductFields):
    sku: Cell


class ProductsIn(Schema):
    items: list[ProductItem] = Field(min_length=1, max_length=settings.API_BULK_MAX_ITEMS)


class SalesItem(Schema):
    model_config = ConfigDict(extra="forbid")
    sku: Cell
    sales_count: Cell


class SalesIn(Schema):
    items: list[SalesItem] = Field(min_length=1, max_length=settings.API_BULK_MAX_ITEMS)


class ItemErrorOut(Schema):
    index: int = Field(description="The item's position in `items`, from 0.")
    field: str
    reason: str


class ItemDone(Schema):
    index: int
    sku: str
    action: ImportAction


class WriteResult(Schema):
    created: int
    updated: int
    unchanged: int
    items: list[ItemDone] = Field(description="The items written (or unchanged).")
    errors: list[ItemErrorOut] = Field(description="The items not written, and why.")


def _write(*, items: list[dict], sales_only: bool, token) -> ItemsResult:
    try:
        return products_write(
            items=items, sales_only=sales_only, user=token.owner, token_name=token.name
        )
    except ItemsConflict:
        raise ApiProblem(
            409,
            "Another write created some of these products at the same time; nothing of this "
            "call was written. Send it again.",
            "conflict",
        ) from None


def _result(result: ItemsResult) -> dict:
    return {
        "created": result.count(ImportAction.CREATE),
        "updated": result.count(ImportAction.UPDATE),
        "unchanged": result.count(ImportAction.UNCHANGED),
        "items": [
            {"index": index, "sku": sku, "action": action}
            for index, (sku, action) in sorted(result.actions.items())
        ],
        "errors": [error.__dict__ for error in result.errors],
    }


@router.get("", response=ProductPage, summary="List products")
def products_list(request, filters: Query[ProductFilters]):
    """Products in SKU order, filtered as the admin's list is; follow `next` for more."""
    require(request, ApiScope.PRODUCTS_READ, VIEW)
    products = Product.objects.all()
    for name in ("category", "style", "season", "lifecycle", "index_state"):
        if (value := getattr(filters, name)) is not None:
            products = products.filter(**{name: value})
    if filters.bestseller is not None:
        threshold = bestseller_threshold()
        products = (
            products.filter(sales_count__gt=threshold)
            if filters.bestseller
            else products.filter(sales_count__lte=threshold)
        )
    if filters.updated_since is not None:
        products = products.filter(updated_at__gte=filters.updated_since)
    rows, next_url = page(request, products, key="sku", limit=filters.limit, cursor=filters.cursor)
    return {"items": rows, "next": next_url}


@router.post("/bulk", response=WriteResult, summary="Create or update many")
def products_bulk(request, payload: ProductsIn):
    """Up to API_BULK_MAX_ITEMS products by SKU. Items without errors are written, each whole
    or not at all; each error names the item's index, the field and the reason."""
    token = require(request, ApiScope.PRODUCTS_WRITE, ADD, CHANGE)
    items = [item.model_dump(exclude_unset=True) for item in payload.items]
    result = _write(items=items, sales_only=False, token=token)
    return _result(result)


@router.post("/sales", response=WriteResult, summary="Update sales counts")
def products_sales(request, payload: SalesIn):
    """Sales counts of existing products, as the CSV sales update takes them."""
    token = require(request, ApiScope.PRODUCTS_WRITE, CHANGE)
    items = [item.model_dump() for item in payload.items]
    result = _write(items=items, sales_only=True, token=token)
    return _result(result)


# After /bulk and /sales, which a SKU route would otherwise catch.
@router.get("/{sku}", response=ProductOut, summary="Get a product")
def product_get(request, sku: str):
    require(request, ApiScope.PRODUCTS_READ, VIEW)
    return get_object_or_404(Product, sku=sku)


@router.put("/{sku}", response={200: ProductOut, 201: ProductOut}, summary="Create or update")
def product_put(request, sku: str, payload: ProductFields):
    """Create the product with this SKU or update the fields sent; 201 when it was created."""
    exists = Product.objects.filter(sku=sku).exists()
    token = require(request, ApiScope.PRODUCTS_WRITE, CHANGE if exists else ADD)
    item = {"sku": sku, **payload.model_dump(exclude_unset=True)}
    result = _write(items=[item], sales_only=False, token=token)
    if result.errors:
        raise ApiProblem(
            422,
            f"The product {sku!r} was not written; see errors.",
            "invalid-fields",
            [{"field": error.field, "reason": error.reason} for error in result.errors],
        )
    _, action = result.actions[0]
    return Status(201 if action == ImportAction.CREATE else 200, Product.objects.get(sku=sku))


class UploadOut(Schema):
    id: str = Field(description="Name it as an item's `image_upload`.")


@uploads.post("", response={201: UploadOut}, summary="Upload a photo")
def upload_create(request, file: File[UploadedFile]):
    """A product's photo sent on its own (multipart, field `file`), for items that name it by
    id rather than carrying it as base64."""
    token = require(request, ApiScope.PRODUCTS_WRITE, ADD)
    limit = settings.CATALOG_IMAGE_MAX_BYTES
    data = file.read(limit + 1)
    if len(data) > limit:
        raise ApiProblem(
            413,
            f"The photo is larger than {limit:,} bytes.",
            "too-large",
            [{"field": "file", "reason": f"is larger than {limit:,} bytes"}],
        )
    try:
        upload_id = upload_store(data=data, owner=token.owner)
    except ImageRejected as exc:
        raise ApiProblem(
            422,
            "The file is not a photo the catalog takes.",
            "invalid-fields",
            [{"field": "file", "reason": str(exc)}],
        ) from None
    return Status(201, {"id": upload_id})
