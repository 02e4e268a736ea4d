"""Money spent on paid model calls: the ledger of billed answers, the month's total, and the
reservations of calls in flight. Catalog (embeddings) and generation (analysis, images) book
here alike."""

from decimal import Decimal

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
    """The worst-case cost of one paid call in flight, held against the cap until the call is
    booked or fails. A crashed worker's reservation expires and the sweeper removes it."""

    month = models.ForeignKey(MonthlySpend, on_delete=models.CASCADE, related_name="reservations")
    amount = models.DecimalField(max_digits=10, decimal_places=6)
    owner = models.CharField(max_length=200, help_text="The worker making the call.")
    subject = models.CharField(max_length=200, help_text="What the call is for, e.g. asset:12.")
    expires_at = models.DateTimeField(db_index=True)
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
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.subject}: ${self.cost}"
