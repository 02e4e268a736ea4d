"""Model providers for promo generation, chosen in settings by dotted path (see base)."""

from generation.providers.base import (  # noqa: F401 - the package's public names
    GeneratedImage,
    ImageGenerator,
    ImageRequest,
    ProductBrief,
    ProviderError,
    ReferenceImage,
    StyleAnalyst,
    StyleRequest,
    StyleResult,
    get_image_generator,
    get_style_analyst,
)
