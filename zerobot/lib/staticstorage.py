"""Static files with their content's hash in their names (``dashboard.3f2a9c1b04de.js``), so
WhiteNoise serves them with ``Cache-Control: max-age=315360000, public, immutable``: a browser
that has them never asks again, however long after (the plain names were ``max-age=60``: a visit
a minute later revalidated each file, one request each to the one server process)."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    # The page's modules import each other ("./api.js"): rewritten to the hashed names too, or a
    # hashed dashboard.js would load the plain (briefly cached) api.js.
    support_js_module_import_aggregation = True
