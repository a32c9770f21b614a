import { describe, expect, it } from "vitest";
import { NotificationState, OPTIMISTIC_TTL_MS } from "../src/client/state.js";
import { counts, note } from "./fixtures.js";

const seqs = (state: NotificationState) => state.notifications.map((n) => n.seq);

describe("de-duplication and ordering", () => {
  it("keeps one copy per id and orders newest first by seq", () => {
    const state = new NotificationState();
    expect(state.add([note(2), note(1), note(3)]).map((n) => n.seq)).toEqual([2, 1, 3]);
    expect(state.add([note(3), note(2)])).toEqual([]);
    expect(seqs(state)).toEqual([3, 2, 1]);
  });

  it("orders by seq, not by arrival or createdAt", () => {
    const state = new NotificationState();
    state.add([note(5, { createdAt: "2020-01-01T00:00:00Z" })]);
    state.add([note(7, { createdAt: "2019-01-01T00:00:00Z" })]);
    state.add([note(6)]);
    expect(seqs(state)).toEqual([7, 6, 5]);
  });

  it("a redelivered copy never undoes a read", () => {
    const state = new NotificationState();
    state.add([note(1, { readAt: "2026-11-24T16:00:00Z" })]);
    state.add([note(1)]);
    expect(state.get("id-1")?.readAt).toBe("2026-11-24T16:00:00Z");
  });

  it("a later copy carrying readAt marks the held one read", () => {
    const state = new NotificationState();
    state.add([note(1)]);
    state.add([note(1, { readAt: "2026-11-24T16:00:00Z" })]);
    expect(state.get("id-1")?.readAt).toBe("2026-11-24T16:00:00Z");
  });

  it("drops the oldest beyond its bound", () => {
    const state = new NotificationState(3);
    state.add([note(1), note(2), note(3), note(4), note(5)]);
    expect(seqs(state)).toEqual([5, 4, 3]);
  });

  it("live duplicates do not count twice", () => {
    const state = new NotificationState();
    state.applyServerCounts(counts(0));
    state.add([note(1)], { live: true });
    state.add([note(1)], { live: true });
    expect(state.counts.unreadCount).toBe(1);
  });
});

describe("resume cursor and gaps", () => {
  it("has no cursor until the first backlog is complete", () => {
    const state = new NotificationState();
    state.add([note(4), note(5)]);
    expect(state.cursor).toBeNull();
    expect(state.gap()).toBeNull();
    state.coverUpTo(5);
    expect(state.cursor).toBe(5);
  });

  it("a brand-new user with nothing gets cursor 0", () => {
    const state = new NotificationState();
    state.coverUpTo(null);
    expect(state.cursor).toBe(0);
  });

  it("advances over contiguous seqs", () => {
    const state = new NotificationState();
    state.coverUpTo(10);
    state.add([note(11)]);
    state.add([note(12)]);
    expect(state.cursor).toBe(12);
    expect(state.gap()).toBeNull();
  });

  it("detects a gap and closes it when the missing seqs arrive out of order", () => {
    const state = new NotificationState();
    state.coverUpTo(10);
    state.add([note(13)]);
    expect(state.gap()).toEqual({ from: 11, to: 12 });
    expect(state.cursor).toBe(10);
    state.add([note(12)]);
    expect(state.gap()).toEqual({ from: 11, to: 11 });
    state.add([note(11)]);
    expect(state.gap()).toBeNull();
    expect(state.cursor).toBe(13);
  });

  it("reports the lowest hole first", () => {
    const state = new NotificationState();
    state.coverUpTo(1);
    state.add([note(3), note(6)]);
    expect(state.gap()).toEqual({ from: 2, to: 2 });
    state.add([note(2)]);
    expect(state.gap()).toEqual({ from: 4, to: 5 });
  });

  it("a resume backlog fills the gap (and its duplicates are ignored)", () => {
    const state = new NotificationState();
    state.coverUpTo(10);
    state.add([note(14)]);
    expect(state.gap()).toEqual({ from: 11, to: 13 });
    // the socket resumes with hello.lastSeq = 10; the server sends 11..14
    state.add([note(11), note(12), note(13), note(14)]);
    state.coverUpTo(14);
    expect(state.gap()).toBeNull();
    expect(state.cursor).toBe(14);
    expect(state.size).toBe(5 - 1);
  });

  it("coverUpTo skips seqs the server will not send (archived, expired)", () => {
    const state = new NotificationState();
    state.coverUpTo(10);
    state.add([note(12)]);
    state.coverUpTo(11);
    expect(state.cursor).toBe(12);
  });

  it("feed pages (trackSeq false) never move the cursor", () => {
    const state = new NotificationState();
    state.coverUpTo(5);
    state.add([note(9)], { trackSeq: false });
    expect(state.cursor).toBe(5);
    expect(state.gap()).toBeNull();
  });

  it("never moves the cursor backwards", () => {
    const state = new NotificationState();
    state.coverUpTo(10);
    state.coverUpTo(3);
    state.add([note(2)]);
    expect(state.cursor).toBe(10);
  });
});

describe("unread and unseen counts", () => {
  it("takes server counts as truth and adds live notifications on top", () => {
    const state = new NotificationState();
    state.applyServerCounts(counts(4, 2));
    state.add([note(1)], { live: true });
    expect(state.counts).toEqual(counts(5, 3));
    // the next server count includes that notification: no double count
    state.applyServerCounts(counts(5, 3));
    expect(state.counts).toEqual(counts(5, 3));
  });

  it("backlog (non-live) notifications are already in the welcome counts", () => {
    const state = new NotificationState();
    state.applyServerCounts(counts(2));
    state.add([note(1), note(2)]);
    expect(state.counts.unreadCount).toBe(2);
  });

  it("optimistic read drops the count at once; the server event confirms it", () => {
    const state = new NotificationState();
    state.add([note(1), note(2)]);
    state.applyServerCounts(counts(2));
    expect(state.markReadLocal("id-1", 1_000)).toBe(true);
    expect(state.counts.unreadCount).toBe(1);
    expect(state.get("id-1")?.readAt).not.toBeNull();
    state.applyState({ type: "notification:read", ids: ["id-1"], at: "2026-11-24T16:00:00Z", ...counts(1, 0) });
    expect(state.counts.unreadCount).toBe(1);
    expect(state.nextExpiry()).toBeNull();
  });

  it("an unrelated server event before the confirmation does not undo the optimistic read", () => {
    const state = new NotificationState();
    state.add([note(1), note(2), note(3)]);
    state.applyServerCounts(counts(3));
    state.markReadLocal("id-1", 0);
    // someone read id-3 elsewhere; the server did not process id-1 yet
    state.applyState({ type: "notification:read", ids: ["id-3"], at: "2026-11-24T16:00:00Z", ...counts(2, 0) });
    expect(state.counts.unreadCount).toBe(1);
    state.applyState({ type: "notification:read", ids: ["id-1"], at: "2026-11-24T16:00:01Z", ...counts(1, 0) });
    expect(state.counts.unreadCount).toBe(1);
  });

  it("the server wins when it disagrees: counts are replaced, never accumulated", () => {
    const state = new NotificationState();
    state.add([note(1)]);
    state.applyServerCounts(counts(1));
    state.add([note(2)], { live: true });
    state.add([note(3)], { live: true });
    expect(state.counts.unreadCount).toBe(3);
    state.applyServerCounts(counts(7, 1)); // e.g. another device's notifications
    expect(state.counts).toEqual(counts(7, 1));
  });

  it("an unconfirmed optimistic read expires and the item is unread again", () => {
    const state = new NotificationState();
    state.add([note(1)]);
    state.applyServerCounts(counts(1));
    state.markReadLocal("id-1", 0);
    expect(state.counts.unreadCount).toBe(0);
    expect(state.expire(OPTIMISTIC_TTL_MS - 1)).toBe(false);
    expect(state.expire(OPTIMISTIC_TTL_MS)).toBe(true);
    expect(state.counts.unreadCount).toBe(1);
    expect(state.get("id-1")?.readAt).toBeNull();
  });

  it("marking an already read notification changes nothing", () => {
    const state = new NotificationState();
    state.add([note(1, { readAt: "2026-11-24T16:00:00Z" })]);
    state.applyServerCounts(counts(0));
    expect(state.markReadLocal("id-1", 0)).toBe(false);
    expect(state.markReadLocal("unknown", 0)).toBe(false);
    expect(state.counts.unreadCount).toBe(0);
  });

  it("read-all is optimistic up to the newest held seq; newer arrivals still count", () => {
    const state = new NotificationState();
    state.add([note(1), note(2), note(3)]);
    state.applyServerCounts(counts(3));
    expect(state.markAllReadLocal(0)).toBe(3);
    expect(state.counts.unreadCount).toBe(0);
    state.add([note(4)], { live: true });
    expect(state.counts.unreadCount).toBe(1);
    state.applyState({ type: "notifications:read-all", upToSeq: 3, at: "2026-11-24T16:00:00Z", ...counts(1, 1) });
    expect(state.counts.unreadCount).toBe(1);
    expect(state.notifications.filter((n) => !n.readAt).map((n) => n.seq)).toEqual([4]);
  });

  it("seen-all zeroes unseen but not unread", () => {
    const state = new NotificationState();
    state.add([note(1), note(2)]);
    state.applyServerCounts(counts(2, 2));
    state.markAllSeenLocal(0);
    expect(state.counts).toEqual(counts(2, 0));
    state.applyState({ type: "notifications:seen", at: "2026-11-24T16:00:00Z", ...counts(2, 0) });
    expect(state.counts).toEqual(counts(2, 0));
    expect(state.notifications.every((n) => n.seenAt)).toBe(true);
  });

  it("unread and archived events update items and take the server counts", () => {
    const state = new NotificationState();
    state.add([note(1, { readAt: "2026-11-24T16:00:00Z" }), note(2)]);
    state.applyState({ type: "notification:unread", ids: ["id-1"], ...counts(2, 0) });
    expect(state.get("id-1")?.readAt).toBeNull();
    state.applyState({ type: "notification:archived", ids: ["id-2"], ...counts(1, 0) });
    expect(state.get("id-2")).toBeUndefined();
    expect(state.counts.unreadCount).toBe(1);
  });

  it("counts never go negative", () => {
    const state = new NotificationState();
    state.add([note(1)]);
    state.applyServerCounts(counts(0));
    state.markReadLocal("id-1", 0);
    expect(state.counts.unreadCount).toBe(0);
  });
});

describe("hand-over between tabs", () => {
  it("a new tab imports the leader's notifications, cursor and counts", () => {
    const leader = new NotificationState();
    leader.add([note(1), note(2), note(3)]);
    leader.coverUpTo(3);
    leader.applyServerCounts(counts(2, 1));
    leader.add([note(4)], { live: true });

    const follower = new NotificationState();
    follower.importSync(leader.exportSync());
    expect(follower.cursor).toBe(4);
    expect(follower.counts).toEqual(counts(3, 2));
    expect(follower.notifications.map((n) => n.seq)).toEqual([4, 3, 2, 1]);
  });
});
