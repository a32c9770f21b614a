/**
 * The client's notification state, pure and synchronous: no socket, no timers, no DOM.
 * Everything that reaches a tab (backlog, live frames, REST pages, relayed frames) goes through
 * here, so de-duplication, the resume cursor, gap detection and count reconciliation live in one
 * place that unit tests drive directly.
 */
import type { Counts, Notification, StateFrame } from "./types.js";

export interface Gap {
  /** First missing seq. */
  from: number;
  /** Last missing seq (inclusive). */
  to: number;
}

export interface SyncPayload {
  notifications: Notification[];
  cursor: number | null;
  counts: Counts;
}

/** How long an optimistic change may stand without the server confirming it. */
export const OPTIMISTIC_TTL_MS = 10_000;

interface PendingRead {
  expiresAt: number;
  optimisticAt: string;
}

interface PendingAll {
  upToSeq: number;
  expiresAt: number;
}

export class NotificationState {
  private readonly byId = new Map<string, Notification>();
  private sortedCache: Notification[] | null = null;
  /** Highest seq held with nothing missing below it (the `hello.lastSeq`), null before the first resume. */
  private cursorSeq: number | null = null;
  /** Seqs received above cursor + 1, waiting for the hole below them to fill. */
  private readonly above = new Set<number>();
  /** The user's newest seq as the server last said it (`pong.latestSeq`); null: unknown. */
  private newestSeq: number | null = null;

  private server: Counts = { unreadCount: 0, unseenCount: 0 };
  /** Live notifications received since the last server counts (which cannot include them). */
  private liveUnread = 0;
  private liveUnseen = 0;
  private readonly pendingRead = new Map<string, PendingRead>();
  private pendingReadAll: PendingAll | null = null;
  private pendingSeen: PendingAll | null = null;

  constructor(private readonly maxItems = 2000) {}

  // ---- notifications -------------------------------------------------------------------

  /**
   * Adds notifications, de-duplicated by id. Returns the ones not held before.
   * `live` marks `notification:new` frames: they are newer than any server count we hold, so
   * they raise the displayed counts until the next server count replaces them.
   */
  add(incoming: readonly Notification[], options: { live?: boolean; trackSeq?: boolean } = {}): Notification[] {
    const added: Notification[] = [];
    for (const n of incoming) {
      const held = this.byId.get(n.id);
      if (held) {
        // Same notification again (redelivery, REST page, relay): keep the newest read state.
        const merged = mergeState(held, n);
        if (merged !== held) this.put(merged);
      } else if (!n.archivedAt) {
        this.put(n);
        added.push(n);
        if (options.live) {
          if (!n.readAt) this.liveUnread += 1;
          if (!n.seenAt) this.liveUnseen += 1;
        }
      }
      if (options.trackSeq !== false) this.noteSeq(n.seq);
    }
    this.trim();
    return added;
  }

  get notifications(): Notification[] {
    if (!this.sortedCache) {
      this.sortedCache = [...this.byId.values()].sort((a, b) => b.seq - a.seq);
    }
    return this.sortedCache;
  }

  get(id: string): Notification | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byId.size;
  }

  maxSeq(): number | null {
    const newest = this.notifications[0];
    const held = newest ? newest.seq : null;
    if (this.cursorSeq === null) return held;
    return held === null ? this.cursorSeq : Math.max(held, this.cursorSeq);
  }

  // ---- resume cursor and gaps ----------------------------------------------------------

  get cursor(): number | null {
    return this.cursorSeq;
  }

  /**
   * The server has sent everything up to `seq` (end of backlog, or a REST page that walked back
   * past the cursor): whatever is not held below it is archived, expired or delivered elsewhere.
   */
  coverUpTo(seq: number | null): void {
    if (seq === null) {
      if (this.cursorSeq === null) this.cursorSeq = 0;
    } else {
      this.cursorSeq = Math.max(this.cursorSeq ?? 0, seq);
    }
    for (const s of this.above) if (s <= this.cursorSeq) this.above.delete(s);
    this.advance();
  }

  /**
   * The server's newest seq for this user (`pong.latestSeq`), or null to forget it (a new
   * socket's welcome says it afresh). A cursor below it is behind: a live frame was lost.
   */
  noteNewest(seq: number | null): void {
    this.newestSeq = seq;
  }

  /**
   * The lowest hole above the cursor: below a held seq, or up to the server's newest seq
   * when nothing above the cursor is held. Null when nothing is missing.
   */
  gap(): Gap | null {
    if (this.cursorSeq === null) return null;
    if (this.above.size > 0) return { from: this.cursorSeq + 1, to: Math.min(...this.above) - 1 };
    if (this.newestSeq !== null && this.newestSeq > this.cursorSeq) {
      return { from: this.cursorSeq + 1, to: this.newestSeq };
    }
    return null;
  }

  private noteSeq(seq: number): void {
    if (this.cursorSeq === null || seq <= this.cursorSeq) return;
    this.above.add(seq);
    this.advance();
  }

  private advance(): void {
    if (this.cursorSeq === null) return;
    while (this.above.delete(this.cursorSeq + 1)) this.cursorSeq += 1;
  }

  // ---- counts --------------------------------------------------------------------------

  /** Server truth (welcome, every state event, unread-count, REST): replaces the badge. */
  applyServerCounts(counts: Counts): void {
    this.server = { unreadCount: counts.unreadCount, unseenCount: counts.unseenCount };
    this.liveUnread = 0;
    this.liveUnseen = 0;
  }

  get counts(): Counts {
    return { unreadCount: this.unreadCount(), unseenCount: this.unseenCount() };
  }

  private unreadCount(): number {
    if (this.pendingReadAll) {
      return this.countAbove(this.pendingReadAll.upToSeq, (n) => !n.readAt);
    }
    const optimistic = this.pendingRead.size;
    return Math.max(0, this.server.unreadCount + this.liveUnread - optimistic);
  }

  private unseenCount(): number {
    if (this.pendingSeen) {
      return this.countAbove(this.pendingSeen.upToSeq, (n) => !n.seenAt);
    }
    return Math.max(0, this.server.unseenCount + this.liveUnseen);
  }

  private countAbove(seq: number, match: (n: Notification) => boolean): number {
    let count = 0;
    for (const n of this.byId.values()) if (n.seq > seq && match(n)) count += 1;
    return count;
  }

  // ---- optimistic changes --------------------------------------------------------------

  /** Marks one read locally until the server confirms. Returns false when nothing changes. */
  markReadLocal(id: string, now: number): boolean {
    const n = this.byId.get(id);
    if (!n || n.readAt) return false;
    const at = new Date(now).toISOString();
    this.put({ ...n, readAt: at });
    this.pendingRead.set(id, { expiresAt: now + OPTIMISTIC_TTL_MS, optimisticAt: at });
    return true;
  }

  /** Marks everything up to `upToSeq` read locally; returns the seq to send to the server. */
  markAllReadLocal(now: number, upToSeq: number | null = this.maxSeq()): number {
    const limit = upToSeq ?? 0;
    const at = new Date(now).toISOString();
    for (const n of this.byId.values()) {
      if (n.seq <= limit && !n.readAt) this.put({ ...n, readAt: at });
    }
    this.pendingReadAll = { upToSeq: limit, expiresAt: now + OPTIMISTIC_TTL_MS };
    return limit;
  }

  markAllSeenLocal(now: number, upToSeq: number | null = this.maxSeq()): number {
    const limit = upToSeq ?? 0;
    const at = new Date(now).toISOString();
    for (const n of this.byId.values()) {
      if (n.seq <= limit && !n.seenAt) this.put({ ...n, seenAt: at });
    }
    this.pendingSeen = { upToSeq: limit, expiresAt: now + OPTIMISTIC_TTL_MS };
    return limit;
  }

  /** Drops optimistic changes the server never confirmed; the server's counts win again. */
  expire(now: number): boolean {
    let changed = false;
    for (const [id, pending] of this.pendingRead) {
      if (pending.expiresAt > now) continue;
      this.pendingRead.delete(id);
      const n = this.byId.get(id);
      if (n && n.readAt === pending.optimisticAt) this.put({ ...n, readAt: null });
      changed = true;
    }
    if (this.pendingReadAll && this.pendingReadAll.expiresAt <= now) {
      this.pendingReadAll = null;
      changed = true;
    }
    if (this.pendingSeen && this.pendingSeen.expiresAt <= now) {
      this.pendingSeen = null;
      changed = true;
    }
    return changed;
  }

  /** The earliest time `expire` has work to do, or null. */
  nextExpiry(): number | null {
    const times = [...this.pendingRead.values()].map((p) => p.expiresAt);
    if (this.pendingReadAll) times.push(this.pendingReadAll.expiresAt);
    if (this.pendingSeen) times.push(this.pendingSeen.expiresAt);
    return times.length ? Math.min(...times) : null;
  }

  // ---- server state events -------------------------------------------------------------

  applyState(frame: StateFrame): void {
    switch (frame.type) {
      case "notification:read":
        for (const id of frame.ids) {
          this.pendingRead.delete(id);
          this.update(id, (n) => (n.readAt ? n : { ...n, readAt: frame.at }));
        }
        break;
      case "notification:unread":
        for (const id of frame.ids) {
          this.pendingRead.delete(id);
          this.update(id, (n) => ({ ...n, readAt: null }));
        }
        break;
      case "notification:archived":
        for (const id of frame.ids) {
          this.pendingRead.delete(id);
          if (this.byId.delete(id)) this.sortedCache = null;
        }
        break;
      case "notifications:read-all": {
        const limit = frame.upToSeq ?? Number.POSITIVE_INFINITY;
        for (const n of [...this.byId.values()]) {
          if (n.seq <= limit && !n.readAt) this.put({ ...n, readAt: frame.at });
        }
        for (const id of [...this.pendingRead.keys()]) {
          const n = this.byId.get(id);
          if (n && n.seq <= limit) this.pendingRead.delete(id);
        }
        if (this.pendingReadAll && this.pendingReadAll.upToSeq <= limit) this.pendingReadAll = null;
        break;
      }
      case "notifications:seen": {
        const limit = frame.upToSeq ?? Number.POSITIVE_INFINITY;
        for (const n of [...this.byId.values()]) {
          if (n.seq <= limit && !n.seenAt) this.put({ ...n, seenAt: frame.at });
        }
        if (this.pendingSeen && this.pendingSeen.upToSeq <= limit) this.pendingSeen = null;
        break;
      }
    }
    this.applyServerCounts(frame);
  }

  // ---- hand-over between tabs ----------------------------------------------------------

  exportSync(limit = 200): SyncPayload {
    return { notifications: this.notifications.slice(0, limit), cursor: this.cursorSeq, counts: this.counts };
  }

  importSync(payload: SyncPayload): Notification[] {
    const added = this.add(payload.notifications, { trackSeq: false });
    if (payload.cursor !== null) this.coverUpTo(payload.cursor);
    this.applyServerCounts(payload.counts);
    return added;
  }

  // ---- internals -----------------------------------------------------------------------

  private put(n: Notification): void {
    this.byId.set(n.id, n);
    this.sortedCache = null;
  }

  private update(id: string, change: (n: Notification) => Notification): void {
    const n = this.byId.get(id);
    if (!n) return;
    const next = change(n);
    if (next !== n) this.put(next);
  }

  private trim(): void {
    if (this.byId.size <= this.maxItems) return;
    for (const n of this.notifications.slice(this.maxItems)) this.byId.delete(n.id);
    this.sortedCache = null;
  }
}

function mergeState(held: Notification, incoming: Notification): Notification {
  const readAt = held.readAt ?? incoming.readAt;
  const seenAt = held.seenAt ?? incoming.seenAt;
  if (readAt === held.readAt && seenAt === held.seenAt) return held;
  return { ...held, readAt, seenAt };
}
