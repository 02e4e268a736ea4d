"""Promo generation: channel presets, batches, generated assets and their event log."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Count, Q, Sum


class SizeTier(models.TextChoices):
    DRAFT = "0.5K", "512 px draft"
    ONE_K = "1K", "1K"
    TWO_K = "2K", "2K"
    FOUR_K = "4K", "4K"


class AspectRatio(models.TextChoices):
    """The ratios Nano Banana 2 accepts (the last four are new in this model)."""

    SQUARE = "1:1", "1:1 square"
    R2_3 = "2:3", "2:3 portrait"
    R3_2 = "3:2", "3:2 landscape"
    R3_4 = "3:4", "3:4 portrait"
    R4_3 = "4:3", "4:3 landscape"
    R4_5 = "4:5", "4:5 portrait"
    R5_4 = "5:4", "5:4 landscape"
    R9_16 = "9:16", "9:16 story"
    R16_9 = "16:9", "16:9 widescreen"
    R21_9 = "21:9", "21:9 cinematic"
    R1_4 = "1:4", "1:4 tall banner"
    R4_1 = "4:1", "4:1 banner"
    R1_8 = "1:8", "1:8 skyscraper"
    R8_1 = "8:1", "8:1 ultra-wide banner"


class QAPolicy(models.TextChoices):
    """What a failed automatic quality check does."""

    FLAG = "flag", "Flag it for the reviewer"
    REGENERATE = "regenerate", "Regenerate once automatically, then flag"


class ChannelPreset(models.Model):
    """A sales channel's image format and rules, e.g. a marketplace main image."""

    name = models.CharField(max_length=100, unique=True)
    aspect_ratio = models.CharField(max_length=8, choices=AspectRatio.choices)
    size_tier = models.CharField(
        max_length=8,
        choices=SizeTier.choices,
        default=SizeTier.ONE_K,
        help_text="The size images for this channel are made at, unless a request asks "
        "for another.",
    )
    white_background = models.BooleanField(
        default=False,
        help_text="The channel demands a pure white background (e.g. marketplace main images).",
    )
    rules = models.TextField(
        blank=True,
        max_length=4000,
        help_text="What every image for this channel must follow, in plain sentences "
        "(background, framing, what must not appear). They go into the image model's "
        "instructions word for word.",
    )
    overlay_text = models.CharField(
        "text on the image",
        max_length=120,
        blank=True,
        help_text="Exact text the image must show (a tagline or a price label), written in the "
        "preset's language; {price} stands for the product's price. Empty: the image "
        "shows no text, logos or watermarks at all.",
    )
    language = models.CharField(
        max_length=35,
        default="en",
        help_text="The language of the text on the image (e.g. en, de, fr).",
    )
    staged = models.BooleanField(
        "scene first",
        default=False,
        help_text="Make each image in two steps: the scene first (background and light, in "
        "the bestsellers' style), then the product placed into it. Two image calls per image.",
    )
    qa_policy = models.CharField(
        max_length=16,
        choices=QAPolicy.choices,
        default=QAPolicy.FLAG,
        verbose_name="when a quality check fails",
    )
    use_proven_references = models.BooleanField(
        "learn from proven images",
        default=True,
        help_text="Let this channel's own published images that proved themselves (CTR "
        "credibly above the channel's average, with enough impressions) join the bestseller "
        "photos as style references for new images of similar products. Off: bestseller "
        "photos only.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.aspect_ratio})"


# The longest reason, feedback or note a reviewer may type: a paragraph, not a pasted file
# (generation.review refuses more, on every path: admin, bulk action, API).
REVIEW_TEXT_MAX_LENGTH = 2000


class AssetStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RETRIEVING = "retrieving", "Retrieving bestsellers"
    ANALYSING = "analysing", "Analysing style"
    GENERATING = "generating", "Generating image"
    CHECKING = "checking", "Checking quality"
    IN_REVIEW = "in_review", "In review"
    FAILED = "failed", "Failed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    PUBLISHED = "published", "Published"
    SET_ASIDE = "set_aside", "Set aside (another variant approved)"

    @classmethod
    def running(cls) -> frozenset[str]:
        """Statuses of an asset that the pipeline has yet to finish."""
        return frozenset({cls.QUEUED, cls.RETRIEVING, cls.ANALYSING, cls.GENERATING, cls.CHECKING})

    @classmethod
    def finished(cls) -> frozenset[str]:
        """Statuses of an asset that was generated (whatever its review decided)."""
        return frozenset({cls.IN_REVIEW, cls.APPROVED, cls.REJECTED, cls.PUBLISHED, cls.SET_ASIDE})


@dataclass(frozen=True)
class BatchProgress:
    """How far a batch is: its assets counted by status, and what they cost so far."""

    by_status: dict[str, int]
    cost: Decimal

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def finished(self) -> int:
        return sum(self.by_status[status] for status in AssetStatus.finished())

    @property
    def failed(self) -> int:
        return self.by_status[AssetStatus.FAILED]

    @property
    def running(self) -> int:
        return sum(self.by_status[status] for status in AssetStatus.running())


class Lane(models.TextChoices):
    """How an asset reaches the workers (generation/lanes.py)."""

    INTERACTIVE = "interactive", "Interactive: sent at once, ahead of bulk work"
    BULK = "bulk", "Bulk: fed to the workers a few at a time, batches in turn"


class QAStatus(models.TextChoices):
    """The automatic quality check's verdict on an asset's image."""

    PASSED = "passed", "Passed"
    FLAGGED = "flagged", "Flagged"  # at least one check failed
    ERROR = "error", "Could not check"  # the checker gave no usable answer: a person must look


class GenerationBatchQuerySet(models.QuerySet):
    def with_progress(self):
        """Each batch with its assets counted by status (n_<status>) and their cost (asset_cost),
        in the same query."""
        counts = {
            f"n_{status}": Count("assets", filter=Q(assets__status=status))
            for status in AssetStatus.values
        }
        return self.annotate(**counts, asset_cost=Sum("assets__cost"))


class GenerationBatch(models.Model):
    """One request by a merchandiser: products × presets at one size, with its cost estimate."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="generation_batches",
    )
    presets = models.ManyToManyField(ChannelPreset, related_name="batches")
    size_tier = models.CharField(max_length=8, choices=SizeTier.choices)
    reference_count = models.PositiveSmallIntegerField(default=3)
    variants = models.PositiveSmallIntegerField(
        default=1,
        help_text="Images to choose from per product and channel: approving one sets the "
        "others aside.",
    )
    estimated_cost = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    note = models.TextField(blank=True, help_text="Why the batch stopped early, if it did.")
    stopped_at = models.DateTimeField(
        null=True, blank=True, help_text="When the batch stopped; no paid call starts after."
    )
    # The request page's key: a form submitted twice makes one batch.
    request_key = models.CharField(
        max_length=64, null=True, blank=True, unique=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = GenerationBatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "generation batches"
        permissions = [("request_promos", "Can request promo image generation")]

    def __str__(self) -> str:
        return f"Batch {self.pk} ({self.created_at:%Y-%m-%d %H:%M})"

    def progress(self) -> "BatchProgress":
        """Counts by status and the cost so far: from `with_progress()`'s annotations when the
        batch was read with them (the batch list), else in one query."""
        row = (
            self
            if hasattr(self, "asset_cost")
            else (GenerationBatch.objects.with_progress().get(pk=self.pk))
        )
        return BatchProgress(
            by_status={status: getattr(row, f"n_{status}") for status in AssetStatus.values},
            cost=row.asset_cost or Decimal("0"),
        )


class GeneratedAsset(models.Model):
    """One promo image of one product for one channel preset, and how it was made.

    Each pipeline step saves its result here before the next starts, so a redelivered
    message resumes at the first unfinished step and never pays twice for a finished one.
    """

    batch = models.ForeignKey(GenerationBatch, on_delete=models.CASCADE, related_name="assets")
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.CASCADE, related_name="promo_assets"
    )
    preset = models.ForeignKey(ChannelPreset, on_delete=models.PROTECT, related_name="assets")
    version = models.PositiveIntegerField(default=1)
    variant = models.PositiveSmallIntegerField(
        default=1, help_text="Which of the images to choose from (of the same version) this is."
    )
    previous_version = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_versions"
    )
    status = models.CharField(
        max_length=16, choices=AssetStatus.choices, default=AssetStatus.QUEUED, db_index=True
    )
    # Copied from the batch and preset when queued, so later edits do not change this job.
    aspect_ratio = models.CharField(max_length=8, choices=AspectRatio.choices)
    size_tier = models.CharField(max_length=8, choices=SizeTier.choices)
    reference_count = models.PositiveSmallIntegerField(
        "style bestsellers",
        default=3,
        help_text="How many similar bestsellers the style came from.",
    )
    staged = models.BooleanField(
        "scene first", default=False, help_text="The scene was made first, then the product."
    )
    overlay_text = models.CharField(
        "text on the image",
        max_length=160,
        blank=True,
        help_text="The exact text the image must show.",
    )
    language = models.CharField(max_length=35, blank=True)
    feedback = models.TextField(blank=True, help_text="A reviewer's feedback for this version.")
    regenerated_by_qa = models.BooleanField(
        "remade after a failed check",
        default=False,
        help_text="Made automatically because the quality check flagged the previous version.",
    )

    # step 1: retrieval
    retrieved_at = models.DateTimeField(null=True, blank=True)
    retrieval_note = models.TextField(
        "note on the style bestsellers",
        blank=True,
        help_text="Why fewer bestsellers than asked for were found, if so.",
    )
    # step 2: style analysis
    style_prompt = models.TextField(blank=True)
    analyst_model = models.CharField("model that described the style", max_length=200, blank=True)
    # step 3: generation (staged presets make the scene first and keep it here)
    scene_image = models.ImageField(upload_to="scenes/%Y/%m/", max_length=255, blank=True)
    generation_prompt = models.TextField(blank=True)
    image_model = models.CharField("model that made the image", max_length=200, blank=True)
    image = models.ImageField(upload_to="promos/%Y/%m/", max_length=255, blank=True)
    # Made once when the image is stored: lists and pages never send the full-size image.
    thumbnail = models.ImageField(max_length=255, blank=True, editable=False)
    preview = models.ImageField(max_length=255, blank=True, editable=False)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    model_text = models.TextField(
        blank=True, help_text="Text the image model returned with the image."
    )
    offline = models.BooleanField(
        default=False, help_text="Made by the offline providers (a preview)."
    )
    # step 4: automatic quality checks, before review
    qa_status = models.CharField(
        max_length=8,
        choices=QAStatus.choices,
        blank=True,
        db_index=True,
        verbose_name="quality check",
    )
    qa_checks = models.JSONField(default=list, blank=True)  # [{name, passed, score, note}]
    qa_model = models.CharField(max_length=200, blank=True)
    qa_note = models.TextField(
        blank=True, help_text="Why the quality check could not decide, with what it said."
    )

    cost = models.DecimalField(max_digits=10, decimal_places=6, default=Decimal("0"))
    usage = models.JSONField(default=dict, blank=True)  # per step: tokens and cost
    timings = models.JSONField(default=dict, blank=True)  # per step: seconds
    attempts = models.PositiveIntegerField(
        default=0, help_text="Tries so far; a provider error is tried again, up to a limit."
    )
    # Deliveries that ended waiting for the provider's rate limit or for the index (Milvus
    # down, the collection missing or being filled): not failed attempts.
    rate_waits = models.PositiveIntegerField(default=0, editable=False)
    # Seconds its calls waited for a slot of the provider's rate limit (core.ratelimit).
    rate_wait_seconds = models.FloatField(default=0.0, editable=False)
    lane = models.CharField(
        max_length=12, choices=Lane.choices, default=Lane.INTERACTIVE, db_index=True
    )
    last_error = models.TextField(
        blank=True, help_text="The provider's last error, as it said it (tried again since)."
    )
    failure_reason = models.TextField("why it failed", blank=True)
    # A worker's lease on the asset, renewed while it works (GENERATION_CLAIM_LEASE_SECONDS).
    claimed_by = models.CharField("worker", max_length=200, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The Dramatiq message that carries the asset (the sweeper re-sends it when it is lost),
    # and when its delayed retry is due.
    message_id = models.CharField(max_length=64, blank=True, editable=False)
    retry_at = models.DateTimeField(null=True, blank=True, editable=False)

    # review and publishing
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True)
    published_image = models.FileField(
        max_length=255, blank=True, help_text="The published copy, with AI provenance metadata."
    )
    published_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "preset", "version", "variant"],
                name="one_asset_per_version_and_variant",
                violation_error_message=(
                    "This product already has an image of this version and variant for this preset."
                ),
            ),
        ]
        permissions = [
            ("review_asset", "Can approve, reject and regenerate promo images"),
            ("publish_asset", "Can publish and unpublish promo images"),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} · {self.preset.name} · v{self.version}"

    @property
    def qa_failed(self) -> list[str]:
        """The names of the quality checks the image failed, in plain words."""
        return [
            check["name"].replace("_", " ")
            for check in self.qa_checks
            if check.get("passed") is False
        ]

    @property
    def qa_summary(self) -> str:
        """The verdict in a few words, for lists and the gallery."""
        if self.qa_status == QAStatus.FLAGGED:
            return "QA flagged: " + ", ".join(self.qa_failed)
        if self.qa_status == QAStatus.PASSED:
            unchecked = sum(check.get("passed") is None for check in self.qa_checks)
            return "QA passed" + (f" ({unchecked} not checked)" if unchecked else "")
        if self.qa_status == QAStatus.ERROR:
            return "QA could not check"
        return ""

    @property
    def ledger_subject(self) -> str:
        """How this asset's paid calls are named in the spending ledger (core.ProviderCall)."""
        return f"asset:{self.pk}"


class AssetReference(models.Model):
    """A style reference retrieved for an asset, with its fused look-alike score and rank: a
    bestseller's photo, or a proven promo image (a published image of the same channel preset
    whose CTR beat the preset's average), with the figures that proved it as they were then."""

    class Kind(models.TextChoices):
        BESTSELLER = "bestseller", "bestseller photo"
        PROVEN = "proven", "proven promo image"

    asset = models.ForeignKey(GeneratedAsset, on_delete=models.CASCADE, related_name="references")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.BESTSELLER)
    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="+")
    source_asset = models.ForeignKey(
        GeneratedAsset,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="used_as_reference",
        help_text="The proven promo image (empty for a bestseller photo, or once deleted).",
    )
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()
    dense_rank = models.PositiveSmallIntegerField(null=True, blank=True)
    sparse_rank = models.PositiveSmallIntegerField(null=True, blank=True)
    weight = models.FloatField(
        default=1.0,
        help_text="A proven image's CTR (its interval's lower end) over its preset's average; "
        "1 for a bestseller photo.",
    )
    impressions = models.PositiveIntegerField(null=True, blank=True)
    clicks = models.PositiveIntegerField(null=True, blank=True)
    baseline_ctr = models.FloatField(
        null=True, blank=True, help_text="The preset's average CTR it was compared with."
    )

    class Meta:
        ordering = ["rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "rank"],
                name="one_reference_per_rank",
                violation_error_message="This image already has a reference at this rank.",
            ),
            models.CheckConstraint(
                condition=Q(kind="bestseller")
                | Q(impressions__isnull=False, clicks__isnull=False, baseline_ctr__isnull=False),
                name="proven_reference_has_figures",
                violation_error_message="A proven promo image reference needs the figures "
                "that proved it: impressions, clicks and the preset's average CTR.",
            ),
        ]

    def __str__(self) -> str:
        return f"reference {self.rank} of asset {self.asset_id}: product {self.product_id}"

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def proven_summary(self) -> str:
        """'CTR 2.40 % on 12,000 impressions, weight 1.31 (the preset's average: 1.60 %)'."""
        if self.kind != self.Kind.PROVEN or not self.impressions:
            return ""
        return (
            f"CTR {self.ctr:.2%} on {self.impressions:,} impressions, weight {self.weight:.2f} "
            f"(the preset's average: {self.baseline_ctr:.2%})"
        )

    @property
    def image_file(self):
        """The image sent as this reference: the product's photo, or the proven image's
        preview (its longest side 1,280 px); None when a proven image was deleted since."""
        if self.kind == self.Kind.BESTSELLER:
            return self.product.image
        source = self.source_asset
        if source is None:
            return None
        return source.preview or source.image or None


class AssetEvent(models.Model):
    """Append-only log of an asset's status changes: who or which worker, when, and why."""

    asset = models.ForeignKey(GeneratedAsset, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, choices=AssetStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=AssetStatus.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    worker = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"asset {self.asset_id}: {self.from_status or 'new'} → {self.to_status}"


class FeedToken(models.Model):
    """A named token that lets a channel upload read the published feed without a login.

    Only the SHA-256 of the token is stored. The token is 32 random bytes (secrets), so a
    fast hash is enough: a slow, salted password hash guards low-entropy secrets a person
    chose against guessing, and nobody can guess 256 random bits. A fast, unsalted hash also
    lets the feed find the token by its hash in one indexed lookup. The prefix (the token's
    first characters, not secret enough to matter) tells tokens apart in lists and logs.
    Revoking keeps the row, for the record.
    """

    name = models.CharField(
        max_length=100, help_text="Who or what uses it, e.g. “Marketplace nightly upload”."
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Optional: the token stops working at this time."
    )
    # Written at most once a minute per token (core.tokens.USED_EVERY).
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "feed token"
        # Their list is the admin's Feeds page: the feed URLs, then the tokens that read them.
        verbose_name_plural = "feeds and tokens"
        # Tokens are never edited or deleted: made, used and revoked, all on the record.
        default_permissions = ("view",)
        permissions = [("manage_feedtokens", "Can create and revoke feed tokens")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
