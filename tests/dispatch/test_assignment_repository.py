"""The assignments' repository: a lead's open assignments are the open ones only (the ones still
counting in a seller's load), while the managers' list shows every assignment of the lead."""

from __future__ import annotations

from dispatch.assignments.repository import AssignmentRepository
from tests.dispatch.conftest import DispatchApi


async def test_open_assignments_are_only_the_open_ones(dispatch: DispatchApi) -> None:
    await dispatch.site()
    sellers = [await dispatch.seller(name) for name in ("A", "B")]
    clients = {s["id"]: await dispatch.seller_client(s["id"]) for s in sellers}
    lead = await dispatch.qualify()
    first = (await dispatch.assignments(lead))[0]
    dispatch.clock.advance(minutes=1)  # the second offer comes later
    declined = await clients[first["seller_id"]].post(
        f"/v1/assignments/{first['id']}/decline", json={"reason": "busy"}
    )
    assert declined.status_code == 200, declined.text

    async with dispatch.runtime.session_factory() as session:
        repo = AssignmentRepository(session)
        every = await repo.assignments_of_lead(lead)
        still_open = await repo.open_assignments(lead)
    assert [row.status for row in every] == ["declined", "offered"]
    assert [(row.status, row.is_open) for row in still_open] == [("offered", True)]
    assert still_open[0].id == every[1].id
    # The managers' view of the lead lists them all.
    assert [row["status"] for row in await dispatch.assignments(lead)] == ["declined", "offered"]
