from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import admin_login

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    # The split view serves its start-up script as a file: no inline script (the CSP forbids it).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/auth/", include("accounts.urls")),
    path("api/market/", include("marketdata.urls")),
    path("api/", include("trading.urls")),
    # Monitoring: /healthz, /readyz, /metrics, /admin/monitoring/, /silk/. Must stay before
    # "admin/": the admin would otherwise serve its own page at admin/monitoring/.
    path("", include("monitoring.urls")),
    # Before the admin's own: the same login, throttled (accounts.views.admin_login).
    path("admin/login/", admin_login, name="admin_login_throttled"),
    path("admin/", admin.site.urls),
    # The dashboard page (/, /login/, /logout/); its websocket is routed in zerobot/asgi.py.
    path("", include("web.urls")),
]

# Django's last-resort answers: JSON in the API's one error shape under /api/ (zerobot.lib.api).
handler400 = "zerobot.lib.api.bad_request"
handler403 = "zerobot.lib.api.permission_denied"
handler404 = "zerobot.lib.api.not_found"
handler500 = "zerobot.lib.api.server_error"
