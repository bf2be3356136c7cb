"""The demo directory of `make run`, created through dispatch's admin API (idempotent).

Real sites and sellers follow their opening hours and shifts, so a first in-store lead qualified
at lunch, in the evening or at the weekend is escalated (``unassigned``) until someone is on
shift. The demo site is open every day at every hour and its two sellers are always on shift, so
a newcomer's first lead is offered at once: in store when qualified for site ``demo``, in the
full-web pool otherwise (and on public holidays, when every site is closed, by the site's
immediate full-web fallback).

    DEV_TOKEN=… python scripts/demo_seed.py http://127.0.0.1:8003

Nothing is replaced: a site or seller already there (by id, or by display name and mode) is kept
as it is, edits included.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx

ALWAYS = "mon-sun 00:00-24:00"
SITE: dict[str, Any] = {
    "id": "demo",
    "name": "Demo site (open every day, every hour)",
    "postcode": "75001",
    "timezone": "Europe/Paris",
    "opening_hours": ALWAYS,
    "full_web_fallback": True,
    "fallback_after_minutes": 0,
}
SELLERS: tuple[dict[str, Any], ...] = (
    {
        "display_name": "Demo in-store seller",
        "mode": "in_store",
        "site_id": "demo",
        "shifts": ALWAYS,
        "capacity": 1000,
    },
    {
        "display_name": "Demo full-web seller",
        "mode": "full_web",
        "shifts": ALWAYS,
        "capacity": 1000,
    },
)
_PAGE = 500


def _checked(response: httpx.Response, *expected: int) -> httpx.Response:
    if response.status_code not in expected:
        raise SystemExit(
            f"run: demo seed: {response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response


def existing_sellers(client: httpx.Client) -> set[tuple[str, str]]:
    """(display name, mode) of every seller in the directory."""
    found: set[tuple[str, str]] = set()
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": _PAGE}
        if after is not None:
            params["after"] = after
        page = _checked(client.get("/v1/sellers", params=params), 200).json()
        found.update((seller["display_name"], seller["mode"]) for seller in page)
        if len(page) < _PAGE:
            return found
        after = page[-1]["id"]


def seed(client: httpx.Client) -> list[str]:
    """Create what is missing; one line per thing, saying whether it was created."""
    lines: list[str] = []
    site = _checked(client.get(f"/v1/sites/{SITE['id']}"), 200, 404)
    if site.status_code == 404:
        _checked(client.post("/v1/sites", json=SITE), 201)
    state = "created" if site.status_code == 404 else "already there"
    lines.append(f"site {SITE['id']!r} ({ALWAYS}, full-web fallback when closed): {state}")
    present = existing_sellers(client)
    for seller in SELLERS:
        key = (seller["display_name"], seller["mode"])
        if key not in present:
            _checked(client.post("/v1/sellers", json=seller), 201)
        state = "already there" if key in present else "created"
        lines.append(f"seller {seller['display_name']!r} (on shift {ALWAYS}): {state}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="demo_seed.py", description="The demo directory of make run (idempotent)."
    )
    parser.add_argument("dispatch_url", help="dispatch's base URL, e.g. http://127.0.0.1:8003")
    args = parser.parse_args(argv)
    token = os.environ.get("DEV_TOKEN")
    if not token:
        raise SystemExit("run: demo seed: DEV_TOKEN (a token with the admin role) is not set")
    with httpx.Client(
        base_url=args.dispatch_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
        trust_env=False,
    ) as client:
        for line in seed(client):
            print(f"run:   demo {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
