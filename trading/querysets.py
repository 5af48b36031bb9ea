"""Read paths. Every per-user read starts with ``for_owner`` and is answered by one index range scan;
the index each method relies on is named next to it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


class BotQuerySet(models.QuerySet):
    def for_owner(self, user: AbstractBaseUser) -> BotQuerySet:
        return self.filter(owner=user)

    def newest_first(self) -> BotQuerySet:
        return self.order_by("-created_at", "-id")  # uses bot_owner_created_idx


class PositionQuerySet(models.QuerySet):
    def for_owner(self, user: AbstractBaseUser) -> PositionQuerySet:
        return self.filter(owner=user)

    def for_bot(self, bot_id: int) -> PositionQuerySet:
        return self.filter(bot_id=bot_id)

    def open(self) -> PositionQuerySet:
        # With for_owner: position_owner_open_idx; with for_bot: position_bot_open_idx (partial).
        return self.filter(status="open")

    def newest_first(self) -> PositionQuerySet:
        return self.order_by("-opened_at", "-id")

    def with_bot(self) -> PositionQuerySet:
        return self.select_related("bot")


class TradeQuerySet(models.QuerySet):
    def for_owner(self, user: AbstractBaseUser) -> TradeQuerySet:
        return self.filter(owner=user)

    def for_bot(self, bot_id: int) -> TradeQuerySet:
        return self.filter(bot_id=bot_id)

    def for_symbol(self, symbol: str) -> TradeQuerySet:
        return self.filter(symbol=symbol)

    def newest_first(self) -> TradeQuerySet:
        # uses trade_owner_time_idx / trade_bot_time_idx / trade_symbol_time_idx
        return self.order_by("-executed_at", "-id")


class EquitySnapshotQuerySet(models.QuerySet):
    def for_owner(self, user: AbstractBaseUser) -> EquitySnapshotQuerySet:
        return self.filter(owner=user)

    def for_bot(self, bot_id: int) -> EquitySnapshotQuerySet:
        return self.filter(bot_id=bot_id)

    def since(self, start: datetime | None) -> EquitySnapshotQuerySet:
        return self if start is None else self.filter(taken_at__gte=start)

    def newest_first(self) -> EquitySnapshotQuerySet:
        return self.order_by("-taken_at")  # uses equity_bot_time_uniq / equity_owner_time_idx
