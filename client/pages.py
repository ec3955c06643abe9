"""Reading every page of a paginated List RPC (AIP-158), written once for every client."""

from __future__ import annotations

from typing import Callable


def all_pages(call: Callable, make_request: Callable[[str], object], field: str, limit: int | None = None) -> list:
    """The items of `field` across pages: `make_request(page_token)` builds each page's request.

    Stops at the last page, at an empty page (a server that keeps handing out tokens with nothing
    behind them must not make a client loop), or once `limit` items are read.
    """
    items: list = []
    token = ""
    while True:
        page = call(make_request(token))
        batch = getattr(page, field)
        items.extend(batch)
        token = page.next_page_token
        if not token or not batch or (limit is not None and len(items) >= limit):
            return items[:limit]
