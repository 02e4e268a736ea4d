"""Money spent on paid model calls: the ledger of billed answers, the month's total, and the
reservations of calls in flight. Catalog (embeddings) and generation (analysis, images) book
here alike. And the API's tokens (ApiToken), which belong to no one app."""

from decimal import Decimal

from django.conf import settings
from django.db import models


class MonthlySpend(models.Model):
    """What paid model calls cost in a calendar month: the sum of its ledger rows.

    Its row is the lock that serialises reservations against the cap (see core.spending).
    """

    month = models.DateField(unique=True)  # the first day of the month
    spent = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.month:%B %Y}: ${self.spent}"


class SpendReservation(models.Model):
    """The worst-case cost of one paid call, held against the cap until the call is booked, is
    known not to have been billed (the provider answered an error), or is settled by the
    spending reconcile.

    A call that may have been billed without our knowing (a timeout, a lost connection: `in
    doubt`; or a worker killed mid-call: the reservation outlives `expires_at`) keeps counting
    against the cap until the reconcile has compared the ledger with the provider's account
    (core.reconcile), which then books what the provider billed as unattributed spend.
    """

    month = models.ForeignKey(MonthlySpend, on_delete=models.CASCADE, related_name="reservations")
    amount = models.DecimalField(max_digits=10, decimal_places=6)
    owner = models.CharField(max_length=200, help_text="The worker making the call.")
    subject = models.CharField(max_length=200, help_text="What the call is for, e.g. asset:12.")
    key = models.CharField(
        max_length=200, blank=True, db_index=True, help_text="The ledger key the call books under."
    )
    expires_at = models.DateTimeField(
        db_index=True, help_text="When the call is over on our side, answered or not."
    )
    in_doubt = models.BooleanField(
        default=False, help_text="The call ended without an answer and may have been billed."
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"${self.amount} for {self.subject} by {self.owner}"


class ProviderCall(models.Model):
    """One billed answer of a model provider: what it cost and whether it was used.

    Answers that were paid for and then rejected (no image, malformed, blank) are booked too,
    with the reason, so the ledger equals what the provider billed.
    """

    class Kind(models.TextChoices):
        EMBEDDING = "embedding", "Embedding"
        ANALYSIS = "analysis", "Style analysis"
        IMAGE = "image", "Image generation"
        SCENE = "scene", "Scene (staged generation)"
        QA = "qa", "Quality check"
        UNATTRIBUTED = "unattributed", "Unattributed provider spend"

    # A deterministic key per answer (e.g. asset:12:image): a redelivered task that finds its
    # answer already booked never books it twice.
    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.CharField(max_length=200, db_index=True)
    model = models.CharField(max_length=200)
    month = models.ForeignKey(MonthlySpend, on_delete=models.PROTECT, related_name="calls")
    cost = models.DecimalField(max_digits=10, decimal_places=6)
    cost_source = models.CharField(max_length=16, help_text="provider (usage.cost) or price table")
    reserved = models.DecimalField(max_digits=10, decimal_places=6, default=Decimal("0"))
    usage = models.JSONField(default=dict, blank=True)
    rejected_reason = models.TextField(blank=True, help_text="Why the paid answer was not used.")
    generation_id = models.CharField(
        max_length=200, blank=True, db_index=True, help_text="The provider's id of the answer."
    )
    provider_cost = models.DecimalField(
        max_digits=10,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="What the provider's own record of the generation says it cost.",
    )
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(
        null=True, blank=True, help_text="Unattributed spend: the time the comparison covers."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.subject}: ${self.cost}"


class SpendReconcile(models.Model):
    """One comparison of the ledger with the provider's account for the key.

    `key_usage` is what the provider says the key has spent, all time; `baseline` what it had
    spent before the studio's ledger started counting (taken at the first reconcile with no
    call in flight); `attributed` the ledger's calls; `pending` the reservations still
    unsettled. Unattributed spend is what is left: key_usage - baseline - attributed - pending
    (never below 0), booked in the ledger so the cap and the month count it.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    key_usage = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    baseline = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    attributed = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    pending = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    unattributed = models.DecimalField(
        max_digits=14, decimal_places=6, default=Decimal("0"), help_text="Total, after this run."
    )
    booked = models.DecimalField(
        max_digits=14, decimal_places=6, default=Decimal("0"), help_text="Booked by this run."
    )
    settled = models.PositiveIntegerField(default=0, help_text="Reservations settled.")
    generations_checked = models.PositiveIntegerField(default=0)
    generations_differing = models.PositiveIntegerField(default=0)
    note = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Reconcile at {self.created_at:%Y-%m-%d %H:%M}"


class ApiScope(models.TextChoices):
    """What an API token may do; each endpoint names the scope it needs."""

    PRODUCTS_READ = "products:read", "Read products"
    PRODUCTS_WRITE = "products:write", "Create and update products, sales"
    GENERATION_WRITE = "generation:write", "Request images"
    ASSETS_READ = "assets:read", "Read images"
    ASSETS_DECIDE = "assets:decide", "Approve, reject, publish images"
    FEED_READ = "feed:read", "Read the published feed"
    PERFORMANCE_READ = "performance:read", "Read images' channel performance figures"


class ApiToken(models.Model):
    """A named token that a system (a PIM, a storefront) sends to /api/v1/ as
    `Authorization: Bearer <token>`.

    It acts for its owner and never beyond: an endpoint needs both the token's scope and the
    owner's Django permission. Only the SHA-256 of the token is stored (core.tokens says why a
    fast hash is enough); the prefix tells tokens apart. Revoking keeps the row, for the record.
    """

    name = models.CharField(
        max_length=100, help_text="Who or what uses it, e.g. “PIM nightly sync”."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,  # a deleted user's tokens could act for nobody
        related_name="api_tokens",
        help_text="The token acts as this user and never exceeds their permissions.",
    )
    scopes = models.JSONField(default=list, help_text="Which of the API's scopes it may use.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Optional: the token stops working at this time."
    )
    # Written at most once a minute per token (core.tokens.USED_EVERY).
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"
        # Tokens are never edited or deleted: made, used and revoked, all on the record.
        default_permissions = ("view",)
        permissions = [("manage_apitokens", "Can create and revoke API tokens")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
