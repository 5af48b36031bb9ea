"""Pagination for every list endpoint: ``?page=&limit=`` or keyset ``?cursor=&limit=``.

Envelope: ``{"total", "page", "pages", "limit", "next", "previous", "results"}``.

- ``limit``: default 100, 10..1000; ``page`` >= 1; a bad or out-of-range value is a 400 naming it.
- ``total`` is supplied by the view from what the data model already knows (running totals,
  partial-index counts) instead of a COUNT(*) over the history on every page.
- Deep pages: past ``LATE_LOOKUP_OFFSET`` rows the OFFSET walks only the index (an index-only scan
  of ids) and then fetches the page's rows by id ("late row lookup").
- Keyset: ``?cursor=`` (from ``next``) continues after the last row seen: one index range scan
  whose cost does not depend on depth. ``previous`` is null in keyset mode (forward scrolling).
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet, Subquery
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

from zerobot.lib.params import int_param

DEFAULT_LIMIT = 100
MIN_LIMIT = 10
MAX_LIMIT = 1000
LATE_LOOKUP_OFFSET = 1000
COUNT_CAP = 10_000  # filtered totals are counted up to this many rows, then reported as a bound


@dataclass(frozen=True)
class PageRequest:
    limit: int
    page: int  # 1 in keyset mode
    cursor: tuple[datetime, int] | None


def page_request(request: Request) -> PageRequest:
    limit = int_param(request, "limit", default=DEFAULT_LIMIT, minimum=MIN_LIMIT, maximum=MAX_LIMIT)
    raw_cursor = (request.query_params.get("cursor") or "").strip()
    if raw_cursor:
        if request.query_params.get("page") is not None:
            raise ValidationError({"cursor": ["Use either page or cursor, not both."]})
        return PageRequest(limit=limit, page=1, cursor=decode_cursor(raw_cursor))
    page = int_param(request, "page", default=1, minimum=1, maximum=10_000_000)
    return PageRequest(limit=limit, page=page, cursor=None)  # type: ignore[arg-type]


def encode_cursor(moment: datetime, pk: int) -> str:
    raw = f"{moment.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, int]:
    try:
        padded = value + "=" * (-len(value) % 4)
        moment, pk = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None or not pk.isascii() or not pk.isdigit() or len(pk) > 19:
            raise ValueError
        return parsed, int(pk)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise ValidationError(
            {"cursor": ["cursor is invalid: pass the value from a previous response's next link."]}
        ) from None


def paginate(
    request: Request,
    queryset: QuerySet,
    *,
    time_field: str,
    total: int,
    total_exact: bool = True,
    pages: PageRequest | None = None,
) -> dict[str, Any]:
    """Order newest first by ``(time_field, id)``, slice one page and build the envelope.

    ``queryset`` should be a ``.values(...)`` queryset including ``time_field`` and ``id``.
    """
    pages = pages or page_request(request)
    ordered = queryset.order_by(f"-{time_field}", "-id")
    limit = pages.limit
    page_count = math.ceil(total / limit) if total else 0
    url = request.build_absolute_uri()

    if pages.cursor is not None:
        moment, pk = pages.cursor
        # The redundant <= bounds the index range; the OR picks up ties on the timestamp.
        rows = list(
            ordered.filter(**{f"{time_field}__lte": moment}).filter(
                Q(**{f"{time_field}__lt": moment}) | Q(id__lt=pk)
            )[: limit + 1]
        )
        has_next = len(rows) > limit
        rows = rows[:limit]
        next_url = None
        if has_next:
            last = rows[-1]
            next_url = replace_query_param(
                url, "cursor", encode_cursor(last[time_field], last["id"])
            )
        return _envelope(total, total_exact, None, page_count, limit, next_url, None, rows)

    offset = (pages.page - 1) * limit
    if total_exact and pages.page > 1 and offset >= total:
        raise ValidationError(
            {"page": [f"page {pages.page} is past the last page ({page_count})."]}
        )
    if offset >= LATE_LOOKUP_OFFSET:
        ids = ordered.values("id")[offset : offset + limit + 1]
        window = ordered.filter(id__in=Subquery(ids))
        rows = list(window)
    else:
        rows = list(ordered[offset : offset + limit + 1])
    has_next = len(rows) > limit
    rows = rows[:limit]
    next_url = replace_query_param(url, "page", pages.page + 1) if has_next else None
    previous_url = None
    if pages.page > 1:
        previous_url = (
            remove_query_param(url, "page")
            if pages.page == 2
            else replace_query_param(url, "page", pages.page - 1)
        )
    return _envelope(
        total, total_exact, pages.page, page_count, limit, next_url, previous_url, rows
    )


def _envelope(
    total: int, exact: bool, page: int | None, pages: int, limit: int, next_url: str | None,
    previous_url: str | None, rows: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {
        "total": total, "page": page, "pages": pages, "limit": limit,
        "next": next_url, "previous": previous_url, "results": rows,
    }  # fmt: skip
    if not exact:
        body["total_is_lower_bound"] = True
    return body
