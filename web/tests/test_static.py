"""Static files as production serves them (``collectstatic`` into STATIC_ROOT, no finders): the
page names them by their content's hash, and WhiteNoise answers those names as immutable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from trading.tests.factories import make_user

pytestmark = pytest.mark.django_db

HASHED = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "zerobot.lib.staticstorage.HashedStaticFilesStorage"},
}
# The other apps' files (admin, API docs, profilers) only cost time here.
OTHERS = ["admin", "rest_framework", "drf_spectacular_sidecar", "silk", "debug_toolbar"]


def test_the_page_loads_hashed_static_names_served_as_immutable(tmp_path: Path) -> None:
    with override_settings(STORAGES=HASHED, STATIC_ROOT=tmp_path, WHITENOISE_USE_FINDERS=False):
        call_command("collectstatic", interactive=False, verbosity=0, ignore_patterns=OTHERS)
        client = Client()
        client.force_login(make_user())
        html = client.get("/").content.decode()
        names = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
        assert len(names) == 9, names  # 2 stylesheets, uPlot, 6 modules (5 preloaded)
        for name in names:
            assert re.search(r"\.[0-9a-f]{12}\.(js|css)$", name), name
            response = client.get(name)
            assert response.status_code == 200, name
            cache = response["Cache-Control"]
            assert "immutable" in cache and "max-age=315360000" in cache, (name, cache)
        # The modules import each other by their hashed names too (none by a plain one).
        module = client.get(next(n for n in names if "/js/dashboard." in n))
        body = b"".join(module.streaming_content)
        imports = re.findall(rb'from "(\./[^"]+)"', body)
        assert imports and all(re.search(rb"\.[0-9a-f]{12}\.js$", i) for i in imports), imports
