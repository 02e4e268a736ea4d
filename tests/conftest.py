import pytest


@pytest.fixture(autouse=True)
def isolated_media(settings, tmp_path):
    """Every test writes files into its own media root and import staging folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CATALOG_IMPORT_STAGING_DIR = tmp_path / "import-staging"
