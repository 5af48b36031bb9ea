"""django-debug-toolbar's SHOW_TOOLBAR_CALLBACK: DEBUG only, staff only."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def show_toolbar(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(settings.DEBUG and user is not None and user.is_active and user.is_staff)
