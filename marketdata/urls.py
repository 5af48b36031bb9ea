from __future__ import annotations

from django.urls import path

from marketdata import views

app_name = "marketdata"

urlpatterns = [
    path("ohlcv", views.OhlcvView.as_view(), name="ohlcv"),
    path("ticker", views.TickerView.as_view(), name="ticker"),
    path("funding-rate", views.FundingRateView.as_view(), name="funding-rate"),
    path("indicators", views.IndicatorsView.as_view(), name="indicators"),
    path("refresh", views.RefreshView.as_view(), name="refresh"),
]
