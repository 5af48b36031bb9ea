"""Read-only admin for the monitoring records; the dashboard itself is /admin/monitoring/.

The admin index gets a "Monitoring" box (dashboard, Silk, metrics): ``index_template`` below.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from monitoring.models import PoolAlert, SlowQuery, SlowRequest

admin.site.index_template = "monitoring/admin_index.html"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written by the monitoring flush only; staff may look and delete, not edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PoolAlert)
class PoolAlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "resolved_at", "alias", "process", "usage_pct", "waiting"]
    list_filter = ["alias"]
    date_hierarchy = "created_at"


@admin.register(SlowRequest)
class SlowRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "at", "method", "operation", "path", "status", "duration_ms", "query_count",
        "query_time_ms", "user_id", "bot_id",
    ]  # fmt: skip
    list_filter = ["operation", "method"]
    date_hierarchy = "at"


@admin.register(SlowQuery)
class SlowQueryAdmin(ReadOnlyAdmin):
    list_display = ["at", "operation", "duration_ms", "short_sql"]
    list_filter = ["operation"]
    search_fields = ["sql"]
    date_hierarchy = "at"

    @admin.display(description="SQL")
    def short_sql(self, obj: SlowQuery) -> str:
        return obj.sql if len(obj.sql) <= 120 else obj.sql[:119] + "…"
