"""CSV import of the catalog: one service (`catalog_import`) behind both the admin page and
`manage.py import_catalog`.

formats   the three CSV formats, header detection, errors naming line and column
sources   where the images come from (a folder or an uploaded ZIP)
cleaning  each cell of a row cleaned, or an error for it
results   the plan per row and the counts
service   parse → plan → write, all rows or none
"""

from catalog.importer.formats import ImportKind, RowError  # noqa: F401 - public names
from catalog.importer.results import ImportAction, ImportResult  # noqa: F401
from catalog.importer.service import catalog_import, count_data_rows  # noqa: F401
from catalog.importer.sources import (  # noqa: F401
    DirectoryImages,
    ImageSourceError,
    ZipImages,
    images_for_path,
)
