import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { NotificationState } from "../src/client/state.js";
import { TocsinClient } from "../src/client/tocsin.js";
import type { ClientFrame, ServerFrame } from "../src/client/types.js";
import { note } from "./fixtures.js";

/** Knowing you are behind: pong.latestSeq above the cursor is a gap the client fills. */

class FakeSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  static all: FakeSocket[] = [];
  readyState = FakeSocket.CONNECTING;
  sent: ClientFrame[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: ((event: { code: number }) => void) | null = null;
  onerror: (() => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }

  open(): void {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
  }

  receive(frame: ServerFrame): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientFrame);
  }

  close(): void {
    this.readyState = FakeSocket.CLOSED;
  }
}

const GRACE_MS = 500;

function latest(): FakeSocket {
  const socket = FakeSocket.all.at(-1);
  if (!socket) throw new Error("no socket");
  return socket;
}

async function flush(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

describe("pong.latestSeq", () => {
  let client: TocsinClient;

  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ notifications: [], nextCursor: null, unreadCount: 0, unseenCount: 0 }))),
    );
    client = new TocsinClient({ url: "ws://gw.test/v1/ws", singleSocket: false, token: "t", gapGraceMs: GRACE_MS });
  });

  afterEach(() => {
    client.stop();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  /** Connected with seqs 1..held, as after a backlog. */
  async function connected(held: number): Promise<FakeSocket> {
    void client.start();
    await flush();
    const socket = latest();
    socket.open();
    const seqs = Array.from({ length: held }, (_, i) => i + 1);
    socket.receive({
      type: "welcome",
      v: 1,
      userId: "u1",
      node: "gw",
      connectionId: "c1",
      lastSeq: held,
      unreadCount: held,
      unseenCount: held,
      heartbeatMs: 25_000,
      tokenExpiresAt: Math.floor(Date.now() / 1000) + 3600,
    });
    socket.receive({ type: "notifications:batch", notifications: seqs.map((s) => note(s)), more: false });
    return socket;
  }

  it("resumes from the cursor when the pong says newer notifications exist and none arrive", async () => {
    const socket = await connected(3);
    socket.receive({ type: "pong", t: 1, latestSeq: 5 });
    await vi.advanceTimersByTimeAsync(GRACE_MS - 100);
    expect(FakeSocket.all.length).toBe(1); // frames may still be in flight
    await vi.advanceTimersByTimeAsync(1_000);
    const resumed = latest();
    expect(resumed).not.toBe(socket);
    resumed.open();
    expect(resumed.sent[0]).toMatchObject({ type: "hello", lastSeq: 3 });
  });

  it("does not resume when the missing notifications arrive within the grace", async () => {
    const socket = await connected(3);
    socket.receive({ type: "pong", t: 1, latestSeq: 5 });
    socket.receive({ type: "notifications:batch", notifications: [note(4), note(5)], more: false });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(FakeSocket.all.length).toBe(1);
    expect(client.getSnapshot().notifications.map((n) => n.seq)).toEqual([5, 4, 3, 2, 1]);
  });

  it("does nothing when up to date, or when the gateway does not say (older gateway, store down)", async () => {
    const socket = await connected(3);
    socket.receive({ type: "pong", t: 1, latestSeq: 3 });
    socket.receive({ type: "pong", t: 2 });
    socket.receive({ type: "pong", t: 3, latestSeq: null });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(FakeSocket.all.length).toBe(1);
  });

  it("forgets a newest seq once a new socket's welcome says it afresh", async () => {
    const socket = await connected(3);
    socket.receive({ type: "pong", t: 1, latestSeq: 9 });
    await vi.advanceTimersByTimeAsync(GRACE_MS + 100);
    const resumed = latest();
    resumed.open();
    // The store was restored from a backup: the newest seq is 3 now, not 9.
    resumed.receive({
      type: "welcome",
      v: 1,
      userId: "u1",
      node: "gw",
      connectionId: "c2",
      lastSeq: 3,
      unreadCount: 3,
      unseenCount: 3,
      heartbeatMs: 25_000,
      tokenExpiresAt: Math.floor(Date.now() / 1000) + 3600,
    });
    resumed.receive({ type: "notifications:batch", notifications: [], more: false });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(FakeSocket.all.length).toBe(2);
  });
});

describe("NotificationState.gap with the server's newest seq", () => {
  it("is the run from the cursor up to the newest seq, and closes when it is held", () => {
    const state = new NotificationState();
    state.add([note(1), note(2)]);
    state.coverUpTo(2);
    expect(state.gap()).toBeNull();
    state.noteNewest(4);
    expect(state.gap()).toEqual({ from: 3, to: 4 });
    state.add([note(4)]);
    expect(state.gap()).toEqual({ from: 3, to: 3 }); // the hole below a held seq comes first
    state.add([note(3)]);
    expect(state.gap()).toBeNull();
    state.noteNewest(null);
    expect(state.gap()).toBeNull();
  });
});
