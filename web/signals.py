"""A logged-out session's sockets are closed at once (not only at their next re-check)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from trading import events


@receiver(user_logged_out, dispatch_uid="web.close_sockets_of_logged_out_session")
def close_sockets_of_logged_out_session(
    sender: Any, request: Any, user: Any, **kwargs: Any
) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and session_key:
        events.publish_session_revoked(owner_id=user.pk, session_key=session_key)
