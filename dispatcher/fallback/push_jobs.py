"""One claimed push job: checks ("offline": no tab acked it), then one push to each of the
user's subscriptions."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from dispatcher.fallback import metrics
from dispatcher.fallback.context import Context, skip_reason
from dispatcher.fallback.jobs import Job
from dispatcher.fallback.push import Result, payload
from shared import preferences_store
from shared.fallback_rules import PUSH
from shared.preferences import PushSubscription

logger = logging.getLogger("tocsin.worker")


async def handle(ctx: Context, job: Job) -> None:
    if ctx.pusher is None:
        await ctx.skip([job], PUSH, "not_configured")
        return
    now = datetime.now(UTC)
    note = (await ctx.queue.notifications([job])).get(job.notification_id)
    reason = skip_reason(note, now)
    if reason is None and job.notification_id in await ctx.queue.delivered([job]):
        reason = "online"  # a tab acked it within the grace: the user saw it live
    prefs = await preferences_store.get(ctx.pool, job.user_id)
    if reason is None and note is not None and not prefs.allows(PUSH, note.type, job.default_on):
        reason = "preferences"
    if reason is not None or note is None:
        await ctx.skip([job], PUSH, reason or "missing")
        return
    quiet = prefs.quiet_until(now)
    if quiet is not None:
        await ctx.postpone([job], PUSH, quiet, now)
        return
    subscriptions = await preferences_store.push_subscriptions(ctx.pool, job.user_id)
    if not subscriptions:
        await ctx.skip([job], PUSH, "no_subscription")
        return
    existing = await ctx.queue.reserve([job], PUSH, digest=False)
    if not await ctx.settle_existing([job], PUSH, existing):
        return
    if not await ctx.queue.point_of_no_return([job], PUSH):
        await ctx.queue.drop_unsent([job.notification_id], PUSH)
        await ctx.skip([job], PUSH, "read_or_online")
        return
    data = payload(note)
    results = await asyncio.gather(*(_one(ctx, s, data) for s in subscriptions))
    await _record(ctx, job, set(results))


async def _one(ctx: Context, subscription: PushSubscription, data: bytes) -> Result:
    assert ctx.pusher is not None
    result = await ctx.pusher.send(subscription, data)
    if result is Result.GONE:
        await preferences_store.remove_push_subscription(ctx.pool, subscription.endpoint)
        metrics.PUSH_SUBSCRIPTIONS_REMOVED.inc()
        logger.info("push subscription removed: the push service answered 404/410")
    return result


async def _record(ctx: Context, job: Job, results: set[Result]) -> None:
    """At most once per notification: one accepted push ends the job, whatever the others
    did; only when none was accepted and none may have been is it retried."""
    ids = [job.notification_id]
    if Result.ACCEPTED in results:
        await ctx.queue.mark(ids, PUSH, "sent")
        ended = await ctx.queue.finish([job], "done", "sent")
        metrics.JOBS.labels(channel=PUSH, outcome="sent").inc(ended)
    elif Result.UNKNOWN in results:
        await ctx.queue.mark(ids, PUSH, "unknown")
        ended = await ctx.queue.finish([job], "done", "unknown")
        metrics.JOBS.labels(channel=PUSH, outcome="unknown").inc(ended)
    elif Result.NOT_SENT in results:
        await ctx.queue.mark(ids, PUSH, "preparing")
        await ctx.retry_or_give_up([job], PUSH, "push service unreachable or busy")
    else:
        gone = results == {Result.GONE}
        await ctx.queue.mark(ids, PUSH, "failed", "gone" if gone else "refused")
        ended = await ctx.queue.finish(
            [job], "cancelled" if gone else "failed", "no_subscription" if gone else "refused"
        )
        metrics.JOBS.labels(channel=PUSH, outcome="skipped" if gone else "failed").inc(ended)
