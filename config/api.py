"""The REST API, /api/v1/: one NinjaAPI with each app's router.

django-ninja rather than Django REST Framework: its endpoints take and return typed pydantic
schemas, the OpenAPI 3 schema is generated from those same types, and it is small. The
interactive docs are for logged-in staff only; the API itself answers only a bearer token
(core.api.auth), and every error is a problem document (core.api.problems).
"""

from django.contrib.admin.views.decorators import staff_member_required
from ninja import NinjaAPI

from catalog.api import router as products
from catalog.api import uploads
from core.api import problems
from core.api.auth import TokenAuth
from core.models import ApiScope
from generation.api import router as feed
from generation.api_assets import router as assets
from generation.api_generation import batches
from generation.api_generation import router as generation
from performance.api import asset_figures, channel_days

api = NinjaAPI(
    title="Promo studio API",
    version="1",
    description=(
        "Send an API token as `Authorization: Bearer <token>` (made in the admin under API "
        "tokens, or with `manage.py create_api_token`). Errors are RFC 9457 problem details.\n\n"
        "A token's scopes say what it may do; each endpoint needs one, and its owner's "
        "permissions as well: "
        + ", ".join(f"`{scope.value}` ({scope.label.lower()})" for scope in ApiScope)
        + "."
    ),
    auth=TokenAuth(),
    urls_namespace="api-v1",
    docs_decorator=staff_member_required,
)
problems.install(api)
api.add_router("/products", products)
api.add_router("/uploads", uploads)
api.add_router("/feed", feed)
api.add_router("/assets", assets)
# beside the assets' routes, not in them: generation never reads the figures
api.add_router("/assets", asset_figures)
api.add_router("/channel-days", channel_days)
api.add_router("/generation", generation)
api.add_router("/batches", batches)
