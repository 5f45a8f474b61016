"""Typed application keys of the composition root. Packages declare the keys of
their own services in their `web.py`; these are the shared resources."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from fooddispatch.config import Settings
from fooddispatch.liveness import ProcessLiveness
from fooddispatch.metrics import Metrics
from kernel.clock import Clock
from kernel.eventbus import StreamConsumer
from kernel.leases import JobLeases

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", asyncpg.Pool)
REDIS = web.AppKey("redis", aioredis.Redis)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
EVENT_STREAM = web.AppKey("event_stream", str)
IDENTITY = web.AppKey("identity", object)
# The leases of this app's singular recurring jobs (kernel/leases.py).
JOB_LEASES = web.AppKey("job_leases", JobLeases)
# This process's stream consumers, one per consuming package (health and metrics read them).
CONSUMERS = web.AppKey("consumers", list[StreamConsumer])
# This process's liveness lock: idempotency claims and stream consumers are alive while it is held.
LIVENESS = web.AppKey("liveness", ProcessLiveness)
