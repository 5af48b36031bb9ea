"""Trading core (issue 9): close reasons, liquidation price, a bot's status reason.

Existing rows: a closing fill (its side opposite its position's opening side) recorded before
reasons existed was a manual close (the API and admin were the only closers), and so was the close
of every closed position. Opening fills get ``open`` (the column default).
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('trading', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='bot',
            name='status_reason',
            field=models.CharField(blank=True, db_default='', default='', help_text='Why the bot last changed status when a rule changed it (e.g. max drawdown).', max_length=200),
        ),
        migrations.AddField(
            model_name='position',
            name='close_reason',
            field=models.CharField(blank=True, db_default='', default='', help_text='Reason of the fill that closed it (blank while open).', max_length=12),
        ),
        migrations.AddField(
            model_name='position',
            name='liquidation_price',
            field=models.DecimalField(blank=True, decimal_places=12, help_text='Where the loss plus the closing fee uses up the margin (trading.risk); null when it cannot be reached (a 1x long).', max_digits=30, null=True),
        ),
        migrations.AddField(
            model_name='trade',
            name='reason',
            field=models.CharField(choices=[('open', 'Open'), ('signal', 'Strategy signal'), ('stop_loss', 'Stop-loss'), ('take_profit', 'Take-profit'), ('liquidation', 'Liquidation'), ('manual', 'Manual (API, admin)'), ('risk', 'Risk rule')], db_default='open', default='open', help_text='open, or why a closing fill closed.', max_length=12),
        ),
        migrations.AlterField(
            model_name='bot',
            name='risk_params',
            field=models.JSONField(default=dict, help_text='max_position_pct, max_drawdown_pct, max_trades_per_day, max_open_positions, stop_loss_pct, take_profit_pct, validated (see trading.risk).'),
        ),
        migrations.AddIndex(
            model_name='position',
            index=models.Index(condition=models.Q(('status', 'open')), fields=['symbol', 'id'], name='position_open_symbol_idx'),
        ),
        migrations.AddConstraint(
            model_name='position',
            constraint=models.CheckConstraint(condition=models.Q(('close_reason', ''), ('close_reason__in', ['liquidation', 'manual', 'risk', 'signal', 'stop_loss', 'take_profit']), _connector='OR'), name='position_close_reason_valid'),
        ),
        migrations.AddConstraint(
            model_name='trade',
            constraint=models.CheckConstraint(condition=models.Q(('reason__in', ['open', 'signal', 'stop_loss', 'take_profit', 'liquidation', 'manual', 'risk'])), name='trade_reason_valid'),
        ),
        migrations.RunSQL(
            sql="""
                UPDATE trading_trade SET reason = 'manual'
                WHERE EXISTS (
                    SELECT 1 FROM trading_position p
                    WHERE p.id = trading_trade.position_id
                      AND ((p.side = 'long' AND trading_trade.side = 'sell')
                           OR (p.side = 'short' AND trading_trade.side = 'buy'))
                );
                UPDATE trading_position SET close_reason = 'manual' WHERE status = 'closed';
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
