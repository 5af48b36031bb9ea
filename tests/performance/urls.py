"""The project's URLs plus the naive baseline endpoints (benchmarks only)."""

from __future__ import annotations

from tests.performance import baseline
from zerobot.urls import urlpatterns as project_urlpatterns

urlpatterns = [*baseline.urlpatterns, *project_urlpatterns]
