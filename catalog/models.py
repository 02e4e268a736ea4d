from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

sku_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    "Use letters, digits, dots, dashes and underscores, starting with a letter or digit.",
)


def bestseller_threshold() -> int:
    """A product sells "like a bestseller" with more than this many sales."""
    return settings.CATALOG_BESTSELLER_MIN_SALES


class IndexState(models.TextChoices):
    PENDING = "pending", "Pending"
    SYNCED = "synced", "Synced"
    FAILED = "failed", "Failed"


# Saves that only record the index bookkeeping do not make the product pending again.
INDEX_BOOKKEEPING_FIELDS = frozenset({"index_state", "index_error", "index_state_at"})


def changes_index(update_fields) -> bool:
    """Whether a save of these fields (None: all of them) changes what the index holds."""
    return update_fields is None or not set(update_fields) <= INDEX_BOOKKEEPING_FIELDS


class ProductQuerySet(models.QuerySet):
    def bestsellers(self, min_sales: int | None = None):
        return self.filter(
            sales_count__gt=bestseller_threshold() if min_sales is None else min_sales
        )

    def not_bestsellers(self):
        return self.filter(sales_count__lte=bestseller_threshold())

    def awaiting_promos(self):
        return self.filter(lifecycle=Product.Lifecycle.NEW)

    def with_photo(self):
        """Products a promo image can start from."""
        return self.exclude(image="")

    def mark_index_pending(self) -> int:
        """Their index entries are stale until the sync task has run (queryset updates skip save())."""
        return self.update(index_state=IndexState.PENDING)


class Product(models.Model):
    """A catalog product: its flat-lay photo, attributes and sales.

    Historical listings are the store's existing products with their sales; new products have
    only a photo and a prompt hint and wait for promotional images.
    """

    class Lifecycle(models.TextChoices):
        HISTORICAL = "historical", "Historical listing"
        NEW = "new", "New, awaiting promo images"
        PUBLISHED = "published", "New, has published images"

    sku = models.CharField("SKU", max_length=64, unique=True, validators=[sku_validator])
    # The title shoppers see; optional, as the seed's CSV formats have none.
    name = models.CharField(max_length=200, blank=True)
    lifecycle = models.CharField(max_length=16, choices=Lifecycle.choices, default=Lifecycle.NEW)
    # Images are re-encoded and stored under content-addressed names (see catalog.images).
    image = models.ImageField(max_length=255)
    image_width = models.PositiveIntegerField(default=0, editable=False)
    image_height = models.PositiveIntegerField(default=0, editable=False)
    image_sha256 = models.CharField(max_length=64, editable=False, db_index=True)
    thumbnail = models.ImageField(max_length=255, blank=True, editable=False)

    # Category, style, season and lifecycle are indexed with the sku (Meta.indexes): the admin
    # lists each one's distinct values, and a filtered page reads its rows in sku order.
    category = models.CharField(max_length=100)
    color = models.CharField("colour", max_length=100, blank=True)
    style = models.CharField(max_length=100, blank=True)
    season = models.CharField(max_length=50, blank=True)
    # Typed by people and put into prompts: long enough for a page, not for a pasted file.
    description = models.TextField(blank=True, max_length=5000)
    prompt_hint = models.TextField(
        blank=True,
        max_length=1000,
        help_text="Scene hint for promo images, e.g. 'autumn park, golden light'.",
    )
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    sales_count = models.PositiveIntegerField(default=0, db_index=True)
    sales_updated_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Where the product stands in the vector index (Milvus), kept by catalog.indexing.
    index_state = models.CharField(
        max_length=16,
        choices=IndexState.choices,
        default=IndexState.PENDING,
        editable=False,
        db_index=True,
    )
    index_error = models.TextField(blank=True, editable=False)
    index_state_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["sku"]
        permissions = [("import_products", "Can import catalog CSV files")]
        # The product list at 50k+: a filter's page is the first rows of one index range, in
        # sku order.
        indexes = [
            models.Index(fields=["category", "sku"], name="product_category_sku"),
            models.Index(fields=["style", "sku"], name="product_style_sku"),
            models.Index(fields=["season", "sku"], name="product_season_sku"),
            # With the sales count: the bestseller filter reads it here, not from each row.
            models.Index(fields=["lifecycle", "sku", "sales_count"], name="product_lifecycle_sku"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price__gte=0),
                name="product_price_not_negative",
                violation_error_message="The price cannot be negative: enter 0 or more.",
            ),
            models.CheckConstraint(
                condition=models.Q(lifecycle__in=["historical", "new", "published"]),
                name="product_lifecycle_valid",
                violation_error_message="The lifecycle must be historical, new or published.",
            ),
        ]

    def __str__(self) -> str:
        return self.sku

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if changes_index(update_fields):
            self.mark_index_pending()
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "index_state"}
        super().save(*args, **kwargs)

    def mark_index_pending(self) -> None:
        """Any change of content makes the index entry stale until the sync task has run."""
        self.index_state = IndexState.PENDING

    @property
    def is_bestseller(self) -> bool:
        return self.sales_count > bestseller_threshold()

    @property
    def has_photo(self) -> bool:
        """A promo image can start from this product (see ProductQuerySet.with_photo)."""
        return bool(self.image)


class ImageEmbedding(models.Model):
    """A dense vector of an image, cached by (embedder, image content hash).

    Re-indexing, sales updates, rebuilds and restores read vectors from here, so no image is
    sent to a paid embedding model twice.
    """

    embedder = models.CharField(max_length=80)
    image_sha256 = models.CharField(max_length=64)
    dimension = models.PositiveIntegerField()
    vector = models.BinaryField()  # float32, little-endian
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["embedder", "image_sha256"],
                name="one_embedding_per_image",
                violation_error_message="This embedder already has a vector for this photo.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.embedder} vector of {self.image_sha256[:12]}"


class TextVectorizer(models.Model):
    """A fitted TF-IDF vocabulary; the active one encodes every product's sparse vector."""

    version = models.PositiveIntegerField(unique=True)
    vocabulary = models.JSONField()  # term -> column
    idf = models.JSONField()  # column -> inverse document frequency
    document_count = models.PositiveIntegerField()
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="one_active_vectorizer",
                violation_error_message="Another vocabulary is active: only one can be.",
            ),
        ]

    def __str__(self) -> str:
        return f"TF-IDF v{self.version} ({len(self.vocabulary)} terms)"


class IndexRun(models.Model):
    """One rebuild or reconcile of the vector index, for the index status page."""

    class Kind(models.TextChoices):
        REBUILD = "rebuild", "Rebuild"
        RECONCILE = "reconcile", "Reconcile"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    collection = models.CharField(max_length=200, blank=True)
    embedder = models.CharField(max_length=80)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    missing = models.PositiveIntegerField(default=0)
    stale = models.PositiveIntegerField(default=0)
    orphaned = models.PositiveIntegerField(default=0)
    repaired = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.collection or self.embedder} at {self.started_at:%Y-%m-%d %H:%M}"


class ColourVocabulary(models.Model):
    """The catalog's colour words, each with the garment colour it stands for as one embedder
    measures it (catalog.colours): built with every index rebuild, read by every search."""

    embedder = models.CharField(max_length=80, unique=True)
    colours = models.JSONField()  # word -> {"colour": [L, a, b], "spread": [...], "products": n}
    products = models.PositiveIntegerField()  # products with a colour it was measured on
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "colour vocabularies"

    def __str__(self) -> str:
        return f"{len(self.colours)} colour words for {self.embedder}"


class CatalogImport(models.Model):
    """One CSV import, run as a job: the uploaded files wait in the private storage, a worker
    checks them (the preview), and after the requester confirms, writes them in chunks.

    Each chunk commits with the line it reached (`written_through_line`) and the counts so far,
    so a worker killed in the middle resumes after that line and the summary stays exact.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting to be checked"
        CHECKING = "checking", "Checking"
        CHECKED = "checked", "Ready to confirm"
        REFUSED = "refused", "Refused (errors in the file)"
        CONFIRMED = "confirmed", "Waiting to be written"
        WRITING = "writing", "Writing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    RUNNING = (State.QUEUED, State.CHECKING, State.CONFIRMED, State.WRITING)
    FINISHED = (State.REFUSED, State.DONE, State.FAILED, State.CANCELLED)

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    token = models.CharField(max_length=32, unique=True, help_text="Its staged files' folder.")
    csv_name = models.CharField(max_length=255)
    has_images = models.BooleanField(default=False)
    requested_kind = models.CharField(max_length=16, blank=True)
    kind = models.CharField(max_length=16, blank=True, help_text="As detected from the header.")
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.QUEUED, db_index=True
    )
    total_rows = models.PositiveIntegerField(default=0)
    rows_checked = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    written_through_line = models.PositiveIntegerField(
        default=0, help_text="Every row up to this line is written (the checkpoint)."
    )
    photos = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    # The preview's figures (what would happen), then the write's (what did).
    to_create = models.PositiveIntegerField(default=0)
    to_update = models.PositiveIntegerField(default=0)
    to_leave = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Rows with an error.")
    note = models.TextField(blank=True, help_text="Why it failed or stopped.")
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Worker runs so far.")
    claimed_by = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    phase_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "import"
        verbose_name_plural = "imports"

    def __str__(self) -> str:
        return f"Import {self.pk}: {self.csv_name}"

    @property
    def is_running(self) -> bool:
        return self.state in self.RUNNING

    @property
    def kind_label(self) -> str:
        from catalog.importer.formats import ImportKind  # the import package builds on models

        return ImportKind(self.kind).label if self.kind in ImportKind.values else self.kind

    @property
    def duration(self):
        return (self.finished_at - self.created_at) if self.finished_at else None
