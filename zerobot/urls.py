from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/market/", include("marketdata.urls")),
    path("api/", include("trading.urls")),
    # Monitoring: /healthz, /readyz, /metrics, /admin/monitoring/, /silk/. Must stay before
    # "admin/": the admin would otherwise serve its own page at admin/monitoring/.
    path("", include("monitoring.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "zerobot.lib.api.not_found"
