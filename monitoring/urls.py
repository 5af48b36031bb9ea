"""Probes, /metrics, the admin dashboard, and Silk / the debug toolbar when enabled.

Included by zerobot/urls.py *before* ``admin/``: ``admin/monitoring/`` would otherwise be taken by
the admin's own index of the monitoring app.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from monitoring import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics_view, name="metrics"),
    path(
        "admin/monitoring/",
        admin.site.admin_view(views.dashboard_view),
        name="monitoring_dashboard",
    ),
]

if settings.SILK_ENABLED:
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))

if settings.DEBUG_TOOLBAR_ENABLED:
    from debug_toolbar.toolbar import debug_toolbar_urls

    urlpatterns += debug_toolbar_urls()
