from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from trading import views

router = SimpleRouter(trailing_slash=True, use_regex_path=False)
router.register("bots", views.BotViewSet, basename="bot")
router.register("positions", views.PositionViewSet, basename="position")
router.register("trades", views.TradeViewSet, basename="trade")

urlpatterns = [
    path("dashboard/stats", views.DashboardStatsView.as_view(), name="dashboard_stats"),
    path(
        "dashboard/equity-curve",
        views.DashboardEquityCurveView.as_view(),
        name="dashboard_equity_curve",
    ),
    path("dashboard/positions", views.DashboardPositionsView.as_view(), name="dashboard_positions"),
    path("dashboard/trades", views.DashboardTradesView.as_view(), name="dashboard_trades"),
    path(
        "dashboard/performance",
        views.DashboardPerformanceView.as_view(),
        name="dashboard_performance",
    ),
    *router.urls,
]
