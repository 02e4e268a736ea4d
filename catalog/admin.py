from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.functional import cached_property
from django.utils.html import format_html
from django_dramatiq.models import Task as DramatiqTask

from catalog.images import ImageRejected, image_prepare
from catalog.import_admin import ImportViews
from catalog.importer.jobs import imports_running
from catalog.indexing import index_status
from catalog.models import IndexState, Product, bestseller_threshold
from catalog.periodic import reconcile_index
from catalog.selectors import similar_bestsellers
from catalog.services import product_save, products_resync
from catalog.tasks import rebuild_index
from catalog.vector_index import IndexUnavailable
from core.display import short_text
from core.openrouter import ProviderError
from core.queue import enqueue_after_commit

# django_dramatiq's task list only fills with its AdminMiddleware, which renders task
# arguments unescaped; we run without it, so the empty page would only confuse.
if admin.site.is_registered(DramatiqTask):
    admin.site.unregister(DramatiqTask)


class BestsellerFilter(admin.SimpleListFilter):
    title = "bestseller"
    parameter_name = "bestseller"

    def lookups(self, request, model_admin):
        return [("yes", f"Yes (more than {bestseller_threshold():,} sales)"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.bestsellers()
        if self.value() == "no":
            return queryset.not_bestsellers()
        return queryset


class CappedCountPaginator(Paginator):
    """Counts a list only up to COUNT_CAP rows: the product list of a 50k catalog counts what
    a 10k one does. Past the cap the list says "more than 10,000" and pages up to it; the
    filters narrow it to an exact count."""

    COUNT_CAP = 10_000

    @cached_property
    def count(self) -> int:
        counted = self.object_list[: self.COUNT_CAP + 1].count()
        self.capped = counted > self.COUNT_CAP
        return min(counted, self.COUNT_CAP)

    capped = False

    @property
    def cap_label(self) -> str:
        return f"{self.COUNT_CAP:,}"


class ProductAdminForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = (
            "sku",
            "lifecycle",
            "image",
            "category",
            "color",
            "style",
            "season",
            "description",
            "prompt_hint",
            "price",
            "sales_count",
        )
        # What each field means for a merchandiser, in the form (the model keeps its names).
        labels = {
            "image": "Photo (flat-lay)",
            "prompt_hint": "Scene for promo images",
            "sales_count": "Sales",
        }
        help_texts = {
            "sku": "The product's code, as in the shop and the CSV files.",
            "lifecycle": "New products wait for promo images; historical listings, with their "
            "sales, give the style.",
            "image": "JPEG, PNG or WebP. The product on a plain background: promo images and "
            "the look-alike search start from it.",
            "description": "Used, with category, style and season, to find look-alikes.",
            "prompt_hint": "Where the promo images should place the product, e.g. "
            "'autumn park, golden light'.",
            "sales_count": "Units sold. Products with more sales than the bestseller threshold "
            "give their style to new products' promo images.",
        }

    def clean_image(self):
        upload = self.cleaned_data.get("image")
        self.prepared_image = None
        if isinstance(upload, UploadedFile):  # its size was checked as it arrived (uploads.py)
            try:
                self.prepared_image = image_prepare(upload.read())
            except ImageRejected as exc:
                raise forms.ValidationError(f"This photo cannot be used: {exc}.") from None
        return upload


@admin.register(Product)
class ProductAdmin(ImportViews, admin.ModelAdmin):
    form = ProductAdminForm
    change_list_template = "admin/catalog/product/change_list.html"
    # Narrow enough for a 1400 px window beside the filters (the browser test measures it).
    list_display = (
        "thumbnail_tag",
        "sku",
        "category",
        "attributes",
        "price",
        "sales",
        "bestseller",
        "lifecycle_tag",
        "index_state_tag",
    )
    list_display_links = ("thumbnail_tag", "sku")
    # Each filter lists the distinct values of an indexed column, or fixed choices.
    list_filter = ("category", "season", "style", BestsellerFilter, "lifecycle", "index_state")
    search_fields = ("sku", "description")
    list_per_page = 50
    paginator = CappedCountPaginator
    show_full_result_count = False  # one count per page, not a second one of the whole table
    actions = ["resync_index"]
    readonly_fields = (
        "image_details",
        "sales_updated_at",
        "created_at",
        "updated_at",
        "index_state_tag",
        "index_state_at",
    )
    # The photo, its look-alikes and its published images are in the panel above the form
    # (change_form.html, product_panels); the search index's state is detail, folded away.
    fieldsets = [
        (None, {"fields": (("sku", "lifecycle"), "image", "image_details")}),
        (
            "Attributes",
            {
                "fields": (
                    "category",
                    "color",
                    "style",
                    "season",
                    "description",
                    "prompt_hint",
                    "price",
                )
            },
        ),
        ("Sales", {"fields": ("sales_count", "sales_updated_at")}),
        (
            "Search index (for finding look-alikes)",
            {"fields": ("index_state_tag", "index_state_at"), "classes": ("collapse",)},
        ),
        ("History", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:  # nothing to sync before the product exists
            fieldsets = [fs for fs in fieldsets if "index_state_tag" not in fs[1]["fields"]]
        return fieldsets

    def product_panels(self, product: Product) -> list[tuple[str, str, str]]:
        """What the top of a product's page shows beside its photo, as (id, title, html);
        the promo admin adds the published images."""
        return [
            (
                "product-similar",
                "Similar bestsellers, found by photo and description",
                self.similar_panel(product),
            )
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        product = self.get_object(request, object_id)
        if product is not None and self.has_view_permission(request, product):
            extra_context = {
                **(extra_context or {}),
                "product_panels": self.product_panels(product),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Search index", ordering="index_state")
    def index_state_tag(self, product: Product):
        badges = {  # core/static/core/desk.css, with their dark-theme colours
            IndexState.SYNCED: "badge-ok",
            IndexState.PENDING: "badge-warn",
            IndexState.FAILED: "badge-bad",
        }
        label = format_html(
            '<span class="badge {}">{}</span>',
            badges[product.index_state],
            product.get_index_state_display(),
        )
        if product.index_state == IndexState.FAILED and product.index_error:
            return format_html(
                "{}<br><small>{}</small>", label, short_text(product.index_error, 40)
            )
        return label

    def similar_panel(self, product: Product):
        if not product.has_photo:
            return "— (look-alikes are found from the product's photo; it has none yet)"
        try:
            result = similar_bestsellers(product=product)
        except (IndexUnavailable, ProviderError) as exc:
            return format_html(
                '<p class="errornote">Similar bestsellers are unavailable: {}</p>', exc
            )
        return render_to_string("admin/catalog/product/similar_panel.html", {"result": result})

    @admin.action(
        description="Refresh the look-alike search for the selected products",
        permissions=["change"],
    )
    def resync_index(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        products_resync(product_ids=ids)
        self.message_user(
            request, f"Queued {len(ids)} product(s) for the look-alike search (the index)."
        )

    @admin.display(description="Photo")
    def thumbnail_tag(self, product: Product):
        if not product.thumbnail:
            return "—"
        size = 48
        return format_html(
            '<img src="{}" alt="{}" loading="lazy" style="max-width:{}px;max-height:{}px">',
            product.thumbnail.url,
            product.sku,
            size,
            size,
        )

    @admin.display(description="Attributes")
    def attributes(self, product: Product):
        """Colour over style and season: two short lines instead of three wide columns."""
        below = " · ".join(value for value in (product.style, product.season) if value)
        return format_html("{}<br><small>{}</small>", product.color or "—", below or "—")

    @admin.display(description="Lifecycle", ordering="lifecycle")
    def lifecycle_tag(self, product: Product) -> str:
        return {
            Product.Lifecycle.NEW: "New",
            Product.Lifecycle.HISTORICAL: "Historical",
            Product.Lifecycle.PUBLISHED: "Published",
        }[product.lifecycle]

    @admin.display(description="Sales", ordering="sales_count")
    def sales(self, product: Product) -> str:
        return f"{product.sales_count:,}"

    @admin.display(description="Bestseller", boolean=True, ordering="sales_count")
    def bestseller(self, product: Product) -> bool:
        return product.is_bestseller

    @admin.display(description="Stored image")
    def image_details(self, product: Product):
        if not product.image:
            return "—"
        return format_html(
            "{}×{} px, SHA-256 {}…",
            product.image_width,
            product.image_height,
            product.image_sha256[:12],
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        request.FILES  # noqa: B018 - reading the upload is what may refuse it
        if refused := getattr(request, "upload_refused", None):  # stopped while it arrived
            messages.error(request, f"Nothing was saved. {refused}")
            return redirect(request.get_full_path())
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        product_save(
            product=obj, image=form.prepared_image, sales_changed="sales_count" in form.changed_data
        )

    # --- CSV import: upload → dry-run preview → confirm -----------------------------------

    def get_urls(self):
        return (
            self.import_urls()
            + [
                path(
                    "index-status/",
                    self.admin_site.admin_view(self.index_status_view),
                    name="catalog_product_index_status",
                ),
            ]
            + super().get_urls()
        )

    def index_status_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            actor = {"reconcile": reconcile_index, "rebuild": rebuild_index}.get(
                request.POST.get("run")
            )
            if actor is not None:
                enqueue_after_commit(actor)
                messages.success(request, f"Queued {actor.actor_name}; reload this page to see it.")
            return redirect("admin:catalog_product_index_status")
        return TemplateResponse(
            request,
            "admin/catalog/product/index_status.html",
            self._context(
                request,
                status=index_status(),
                title="Search index for look-alikes",
                can_run=self.has_change_permission(request),
            ),
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "has_import_permission": self.has_import_permission(request),
            "running_imports": imports_running(),
        }
        return super().changelist_view(request, extra_context)

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}
