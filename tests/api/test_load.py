"""A bounded load test on loopback: concurrent creates and pollers; every admitted
project ends ready, no 5xx anywhere, and the quota is counted exactly."""

from __future__ import annotations

import asyncio
from collections import Counter

CREATES = 40
QUOTA = 20


async def test_concurrent_creates_and_pollers(http, worker, make_key):
    auth = {"X-API-Key": make_key(quota=QUOTA).key}
    statuses: Counter[int] = Counter()

    async def create(n: int) -> int | None:
        body = {"project_name": f"Load {n}", "template": "widget-lib"}
        response = await http.post("/projects", json=body, headers=auth)
        statuses[response.status_code] += 1
        return response.json()["project"]["id"] if response.status_code == 201 else None

    ids = [i for i in await asyncio.gather(*(create(n) for n in range(CREATES))) if i is not None]
    assert statuses == Counter({201: QUOTA, 429: CREATES - QUOTA}), statuses

    async def poll(project_id: int) -> str:
        deadline = asyncio.get_running_loop().time() + 240
        delay = 0.2
        while True:
            response = await http.get(f"/projects/{project_id}/status", headers=auth)
            statuses[response.status_code] += 1
            body = response.json()
            if body["status"] in ("ready", "failed", "cancelled"):
                return body["status"]
            assert asyncio.get_running_loop().time() < deadline, body
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    finals = await asyncio.gather(*(poll(i) for i in ids))
    assert finals == ["ready"] * QUOTA
    assert not [code for code in statuses if code >= 500], statuses
    listing = (await http.get("/projects", params={"limit": 100}, headers=auth)).json()
    assert listing["total"] == QUOTA
