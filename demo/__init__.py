"""The demo: a sample catalog drawn by code and a local login, kept apart from the catalog's
business code. Nothing in catalog or generation imports it."""
