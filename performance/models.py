"""How published images do on their channels: the imported files and one row per image,
channel preset and day. Staff only: nothing here reaches the feed, and the API shows it only to
a token with `performance:read` of a staff owner who may view it (performance.api)."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class PerformanceImport(models.Model):
    """One performance CSV: checked when uploaded (the preview), written by a worker once its
    uploader confirms (performance.tasks). The counts are the check's, then the write's; `report` keeps what the preview
    lists (errors, unmatched rows, duplicates, updates), the first REPORT_LIMIT of each."""

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting to be checked"
        CHECKED = "checked", "Ready to confirm"
        REFUSED = "refused", "Refused (errors in the file)"
        CONFIRMED = "confirmed", "Waiting to be written"
        WRITING = "writing", "Writing"
        DONE = "done", "Imported"
        CANCELLED = "cancelled", "Cancelled"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    token = models.CharField(max_length=32, unique=True, help_text="Its staged file's folder.")
    csv_name = models.CharField(max_length=255)
    RUNNING = (State.QUEUED, State.CONFIRMED, State.WRITING)

    state = models.CharField(
        max_length=16, choices=State.choices, default=State.QUEUED, db_index=True
    )
    rows = models.PositiveIntegerField(default=0, help_text="Data rows in the file.")
    matched = models.PositiveIntegerField(
        default=0, help_text="Rows matched to the image that was live that day."
    )
    unmatched = models.PositiveIntegerField(
        default=0, help_text="Rows with no image live that day: reported, not written."
    )
    duplicates = models.PositiveIntegerField(
        default=0, help_text="Rows repeating an earlier row's image and day: not written."
    )
    created = models.PositiveIntegerField(default=0, help_text="New days (to be) written.")
    updated = models.PositiveIntegerField(
        default=0, help_text="Days already imported whose figures (would) change."
    )
    unchanged = models.PositiveIntegerField(
        default=0, help_text="Days already imported with the same figures."
    )
    errors = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True, editable=False)
    # When a worker (or the upload) last showed it is on it: the sweeper sends again an import
    # waiting or running without a sign of life (performance.jobs).
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "performance import"
        permissions = [("import_performance", "Can import channel performance files")]

    def __str__(self) -> str:
        return f"Performance import {self.pk}: {self.csv_name}"

    @property
    def is_running(self) -> bool:
        return self.state in self.RUNNING


class ChannelDay(models.Model):
    """One published image's figures on one channel preset for one day, as the channel
    reported them. Importing the same day again updates the figures in place."""

    asset = models.ForeignKey(
        "generation.GeneratedAsset", on_delete=models.CASCADE, related_name="channel_days"
    )
    preset = models.ForeignKey(
        "generation.ChannelPreset", on_delete=models.CASCADE, related_name="channel_days"
    )
    date = models.DateField(db_index=True)
    impressions = models.PositiveIntegerField()
    clicks = models.PositiveIntegerField()
    add_to_carts = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    source = models.ForeignKey(
        PerformanceImport,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="days",
        help_text="The import that last wrote these figures.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "asset_id"]
        verbose_name = "channel day"
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "preset", "date"],
                name="one_channel_day_per_asset_preset_and_date",
                violation_error_message="This image already has figures for this preset and day.",
            ),
            models.CheckConstraint(
                condition=Q(clicks__lte=F("impressions")),
                name="channel_day_clicks_within_impressions",
                violation_error_message="Clicks cannot exceed impressions.",
            ),
            models.CheckConstraint(
                condition=Q(revenue__isnull=True) | Q(revenue__gte=0),
                name="channel_day_revenue_not_negative",
                violation_error_message="Revenue cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        return f"asset {self.asset_id} · preset {self.preset_id} · {self.date}"
