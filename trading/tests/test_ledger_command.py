"""manage.py check_ledger: clean on data written by the services, names the bot on a violation."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from trading.models import Bot, Position, Trade
from trading.tests.conftest import seed_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_check_ledger_is_clean_on_seeded_data() -> None:
    seed_user(bots=2)
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert "ledger OK: 2 bot(s)" in out.getvalue()


def test_check_ledger_names_the_bot_and_the_difference() -> None:
    seed_user(bots=2)
    broken, fine = Bot.objects.order_by("pk")[:2]
    Bot.objects.filter(pk=broken.pk).update(capital=F("capital") + 5)
    err = StringIO()
    with pytest.raises(CommandError, match="1 violation"):
        call_command("check_ledger", stderr=err)
    assert f"capital: bot {broken.pk}:" in err.getvalue() and "by 5" in err.getvalue()
    call_command("check_ledger", "--bot", str(fine.pk), stdout=StringIO())  # the other is fine


def test_check_ledger_sees_a_position_whose_fills_do_not_add_up() -> None:
    seed_user(bots=1)
    closed = Position.objects.filter(status="closed").first()
    Trade.objects.filter(position=closed).update(fee=F("fee") + 1)
    Position.objects.filter(pk=closed.pk).update(fees=F("fees") + 0)  # position unchanged
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_ledger", "--bot", str(closed.bot_id), stderr=err)
    assert f"position: bot {closed.bot_id}: closed position {closed.pk}" in err.getvalue()


def test_check_ledger_unknown_bot_is_an_error() -> None:
    with pytest.raises(CommandError, match="no bot 999999"):
        call_command("check_ledger", "--bot", "999999")
