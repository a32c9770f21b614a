"""One claimed group of a user's email jobs: checks, then one email or one digest."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage

from dispatcher.fallback import email, metrics
from dispatcher.fallback.context import Context, skip_reason
from dispatcher.fallback.jobs import Job
from shared import preferences_store
from shared.fallback_rules import EMAIL
from shared.models import Notification

logger = logging.getLogger("tocsin.worker")


async def handle(ctx: Context, group: Sequence[Job]) -> None:
    if ctx.composer is None:
        await ctx.skip(group, EMAIL, "not_configured")
        return
    now = datetime.now(UTC)
    notes = await ctx.queue.notifications(group)
    prefs = await preferences_store.get(ctx.pool, group[0].user_id)
    keep: list[Job] = []
    for job in group:
        note = notes.get(job.notification_id)
        reason = skip_reason(note, now)
        if reason is None and note is not None:
            allowed = prefs.allows(EMAIL, note.type, job.default_on)
            reason = None if allowed else "preferences"
        if reason is None:
            keep.append(job)
        else:
            await ctx.skip([job], EMAIL, reason)
    if not keep:
        return
    quiet = prefs.quiet_until(now)
    if quiet is not None:
        await ctx.postpone(keep, EMAIL, quiet, now)
        return
    await _addressed(ctx, keep, notes)


async def _addressed(ctx: Context, jobs: list[Job], notes: dict[str, Notification]) -> None:
    """Send to the first job's address the jobs that share it; the others wait their turn."""
    profile = await ctx.queue.profile_email(jobs[0].user_id)
    address = jobs[0].email or profile
    if address is None:
        await ctx.skip(jobs, EMAIL, "no_address")
        return
    same = [j for j in jobs if (j.email or profile) == address]
    await ctx.queue.release([j for j in jobs if j not in same])
    existing = await ctx.queue.reserve(same, EMAIL, digest=len(same) > 1)
    same = await ctx.settle_existing(same, EMAIL, existing)
    if same:
        await _send(ctx, same, notes, address)


async def _send(
    ctx: Context, jobs: list[Job], notes: dict[str, Notification], address: str
) -> None:
    assert ctx.composer is not None and ctx.settings.email is not None
    composer, settings = ctx.composer, ctx.settings.email
    going: list[Job] = []

    async def before_data() -> EmailMessage | None:
        moved = await ctx.queue.point_of_no_return(jobs, EMAIL)
        going.extend(j for j in jobs if j.notification_id in moved)
        late = [j for j in jobs if j.notification_id not in moved]
        await ctx.queue.drop_unsent([j.notification_id for j in late], EMAIL)
        await ctx.skip(late, EMAIL, "read")
        if not going:
            return None
        return composer.compose(address, [notes[j.notification_id] for j in going])

    try:
        sent = await email.deliver(settings.smtp, settings.sender, address, before_data)
    except email.NotSent as exc:
        await _not_sent(ctx, going or jobs, going, str(exc), exc.transient)
        return
    except email.Unknown as exc:
        await ctx.queue.mark([j.notification_id for j in going], EMAIL, "unknown", str(exc))
        ended = await ctx.queue.finish(going, "done", "unknown", str(exc))
        metrics.JOBS.labels(channel=EMAIL, outcome="unknown").inc(ended)
        logger.warning("email to %s: %s; recorded unknown, not resent", email.mask(address), exc)
        return
    if sent:
        await _sent(ctx, going, address)


async def _not_sent(
    ctx: Context, jobs: Sequence[Job], going: Sequence[Job], error: str, transient: bool
) -> None:
    if going:  # refused at DATA: nothing was accepted, so the records may be sent again
        await ctx.queue.mark([j.notification_id for j in going], EMAIL, "preparing", error)
    if transient:
        await ctx.retry_or_give_up(jobs, EMAIL, error)
        return
    await ctx.queue.mark([j.notification_id for j in jobs], EMAIL, "failed", error)
    ended = await ctx.queue.finish(jobs, "failed", "refused", error)
    metrics.JOBS.labels(channel=EMAIL, outcome="failed").inc(ended)
    logger.warning("email jobs %s: refused by the SMTP server: %s", [j.id for j in jobs], error)


async def _sent(ctx: Context, going: Sequence[Job], address: str) -> None:
    digest = len(going) > 1
    await ctx.queue.mark([j.notification_id for j in going], EMAIL, "sent")
    ended = await ctx.queue.finish(going, "done", "digest" if digest else "sent")
    metrics.JOBS.labels(channel=EMAIL, outcome="sent").inc(ended)
    if digest:
        metrics.DIGESTS.inc()
    logger.info(
        "email sent to %s (%s)",
        email.mask(address),
        f"digest of {len(going)}" if digest else f"notification {going[0].notification_id}",
    )
