"""``cycle_finished(result: CycleResult, lag: float)``: sent after every bot cycle a runner or a
Celery task completes. Monitoring connects to it (histograms, the admin page); the engine does
not know who listens."""

from __future__ import annotations

from django.dispatch import Signal

cycle_finished = Signal()
