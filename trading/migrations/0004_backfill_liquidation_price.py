"""Liquidation prices of the positions that were open when 0002 added the column (it left them
null, so a leveraged position opened before could never be liquidated and a close at a loss past
its margin failed with "not enough cash", the bug 0002 was for). Computed with the one formula,
``trading.risk.liquidation_price``; a 1x long stays null (never reached)."""

from typing import Any

from django.db import migrations


def backfill(apps: Any, schema_editor: Any) -> None:
    from trading.risk import liquidation_price

    Position = apps.get_model("trading", "Position")
    open_rows = Position.objects.filter(status="open", liquidation_price__isnull=True)
    for position in open_rows.only("side", "entry_price", "margin", "quantity", "closed_quantity"):
        price = liquidation_price(
            side=position.side,
            entry=position.entry_price,
            margin=position.margin,
            open_quantity=position.quantity - position.closed_quantity,
        )
        if price is not None:
            Position.objects.filter(pk=position.pk).update(liquidation_price=price)


class Migration(migrations.Migration):
    dependencies = [("trading", "0003_engine")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
