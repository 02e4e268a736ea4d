"""Image embedders: product photo bytes in, unit-length dense vectors out.

The backend is chosen by `settings.EMBEDDER_BACKEND` (a dotted path, like `EMAIL_BACKEND`) and
obtained with `get_embedder()`: `offline.OfflineEmbedder` computes a colour-and-shape
descriptor locally, `openrouter.OpenRouterEmbedder` calls a multimodal embedding model.
"""

from catalog.embedders.base import Embedder, get_embedder, unit  # noqa: F401 - public names
