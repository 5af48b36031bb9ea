from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # Monitoring: /healthz, /readyz, /metrics, /admin/monitoring/, /silk/. Must stay before
    # "admin/": the admin would otherwise serve its own page at admin/monitoring/.
    path("", include("monitoring.urls")),
    path("admin/", admin.site.urls),
]
