"""What the catalog tells whoever listens (the webhooks app) beyond Django's model signals:
bulk writes send no post_save, and an import job's end is no single save. Sent inside the
writing transaction; receivers only record what to do after it."""

from django.dispatch import Signal

# created=[Product], updated=[Product]: rows an import wrote in bulk
products_written = Signal()
# job=CatalogImport: an import job ended (done, failed, refused or cancelled)
import_finished = Signal()
