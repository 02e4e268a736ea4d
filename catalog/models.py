from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

sku_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    "Use letters, digits, dots, dashes and underscores, starting with a letter or digit.",
)


class ProductQuerySet(models.QuerySet):
    def bestsellers(self):
        return self.filter(sales_count__gt=settings.CATALOG_BESTSELLER_MIN_SALES)

    def awaiting_promos(self):
        return self.filter(lifecycle=Product.Lifecycle.NEW)


class Product(models.Model):
    """A catalog product: its flat-lay photo, attributes and sales.

    Historical listings are the store's existing products with their sales; new products have
    only a photo and a prompt hint and wait for promotional images.
    """

    class Lifecycle(models.TextChoices):
        HISTORICAL = "historical", "Historical listing"
        NEW = "new", "New, awaiting promo images"

    sku = models.CharField("SKU", max_length=64, unique=True, validators=[sku_validator])
    lifecycle = models.CharField(
        max_length=16, choices=Lifecycle.choices, default=Lifecycle.NEW, db_index=True
    )
    # Images are re-encoded and stored under content-addressed names (see catalog.images).
    image = models.ImageField(max_length=255)
    image_width = models.PositiveIntegerField(default=0, editable=False)
    image_height = models.PositiveIntegerField(default=0, editable=False)
    image_sha256 = models.CharField(max_length=64, editable=False, db_index=True)
    thumbnail = models.ImageField(max_length=255, blank=True, editable=False)

    category = models.CharField(max_length=100, db_index=True)
    color = models.CharField("colour", max_length=100, blank=True)
    style = models.CharField(max_length=100, blank=True)
    season = models.CharField(max_length=50, blank=True)
    description = models.TextField(blank=True)
    prompt_hint = models.TextField(
        blank=True, help_text="Scene hint for promo images, e.g. 'autumn park, golden light'."
    )
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    sales_count = models.PositiveIntegerField(default=0, db_index=True)
    sales_updated_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["sku"]
        permissions = [("import_products", "Can import catalog CSV files")]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_not_negative"),
            models.CheckConstraint(
                condition=models.Q(lifecycle__in=["historical", "new"]), name="product_lifecycle_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.sku

    @property
    def is_bestseller(self) -> bool:
        return self.sales_count > settings.CATALOG_BESTSELLER_MIN_SALES
