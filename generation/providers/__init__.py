"""Model providers for promo generation, chosen in settings by dotted path (see base)."""

from generation.providers.base import (  # noqa: F401 - the package's public names
    CHECK_LABELS,
    CheckResult,
    GeneratedImage,
    ImageGenerator,
    ImageRequest,
    ProductBrief,
    ProviderError,
    QualityChecker,
    QualityReport,
    QualityRequest,
    ReferenceImage,
    Stage,
    StyleAnalyst,
    StyleRequest,
    StyleResult,
    get_image_generator,
    get_quality_checker,
    get_style_analyst,
)
