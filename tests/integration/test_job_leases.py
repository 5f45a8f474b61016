"""Singular recurring jobs: of several processes, only the lease holder runs a job's step; a stopping
holder hands the job over at once, a dead one when its lease expires."""

from __future__ import annotations

import asyncio

from kernel.leases import JobLeases


async def test_only_the_holder_runs_a_singular_job_and_a_released_job_moves_at_once(db) -> None:
    ran: list[str] = []
    a, b = JobLeases(db, "worker-a"), JobLeases(db, "worker-b")

    def step(who: str):
        async def run() -> None:
            ran.append(who)
        return run

    step_a = a.singular("sweep", 1.0, step("a"))
    step_b = b.singular("sweep", 1.0, step("b"))
    for _ in range(3):
        await step_a()
        await step_b()
    assert ran == ["a", "a", "a"]
    await a.release_all()  # a graceful stop
    await step_b()
    await step_a()
    assert ran[3:] == ["b"]


async def test_a_dead_holders_job_moves_when_its_lease_expires(db) -> None:
    ran: list[str] = []
    dead, alive = JobLeases(db, "worker-killed"), JobLeases(db, "worker-alive")

    async def by_dead() -> None:
        ran.append("dead")

    async def by_alive() -> None:
        ran.append("alive")

    await dead.singular("partitions", 0.1, by_dead, ttl=0.5)()  # then killed: it never lets go
    take_over = alive.singular("partitions", 0.1, by_alive, ttl=0.5)
    await take_over()
    assert ran == ["dead"]
    for _ in range(100):  # the lease runs out half a second after the dead holder's last step
        await take_over()
        if "alive" in ran:
            break
        await asyncio.sleep(0.05)
    assert ran == ["dead", "alive"]
