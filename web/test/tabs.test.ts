/**
 * Two clients in one "browser": a fake Web Lock, Node's real BroadcastChannel, fake sockets.
 * Checks the leader holds the only socket, followers mirror it, and a follower that takes over
 * resumes from the cursor it learned through the relay.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TocsinClient } from "../src/client/tocsin.js";
import type { ClientFrame, ServerFrame } from "../src/client/types.js";
import { note } from "./fixtures.js";

class FakeSocket {
  static readonly OPEN = 1;
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: ClientFrame[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: ((event: { code: number }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(frame: ServerFrame): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientFrame);
  }
  close(): void {
    this.readyState = 3;
  }
}

/** navigator.locks with exclusive, FIFO, abortable requests. */
class FakeLocks {
  private held = new Set<string>();
  private queue: Array<{ name: string; grant: () => void }> = [];
  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      const entry = {
        name,
        grant: () => {
          this.held.add(name);
          callback().finally(() => {
            this.held.delete(name);
            resolve();
            this.next(name);
          });
        },
      };
      options.signal?.addEventListener("abort", () => {
        const i = this.queue.indexOf(entry);
        if (i >= 0) {
          this.queue.splice(i, 1);
          reject(new DOMException("aborted", "AbortError"));
        }
      });
      if (this.held.has(name)) this.queue.push(entry);
      else entry.grant();
    });
  }
  private next(name: string): void {
    const i = this.queue.findIndex((e) => e.name === name);
    if (i >= 0) this.queue.splice(i, 1)[0]?.grant();
  }
}

const token = `x.${btoa(JSON.stringify({ sub: "u1", exp: Math.floor(Date.now() / 1000) + 3600 }))}.y`;
const welcome = (lastSeq: number | null): ServerFrame => ({
  type: "welcome",
  v: 1,
  userId: "u1",
  node: "gw",
  connectionId: "c",
  lastSeq,
  unreadCount: lastSeq ?? 0,
  unseenCount: lastSeq ?? 0,
  heartbeatMs: 25_000,
  tokenExpiresAt: Math.floor(Date.now() / 1000) + 3600,
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

describe("one socket per browser", () => {
  let clients: TocsinClient[];

  beforeEach(() => {
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify({ notifications: [], nextCursor: null, unreadCount: 0, unseenCount: 0 }))));
    Object.defineProperty(navigator, "locks", { value: new FakeLocks(), configurable: true });
    clients = [0, 1].map(() => new TocsinClient({ url: "ws://gw.test/v1/ws", token }));
  });

  afterEach(() => {
    for (const c of clients) c.stop();
    vi.unstubAllGlobals();
  });

  it("the leader holds the only socket, relays frames, and a follower takes over from the cursor", async () => {
    const [leader, follower] = clients as [TocsinClient, TocsinClient];
    await leader.start();
    await settle();
    await follower.start();
    await settle();
    expect(FakeSocket.all.length).toBe(1);
    expect(leader.getSnapshot().isLeader).toBe(true);
    expect(follower.getSnapshot().isLeader).toBe(false);

    const socket = FakeSocket.all[0] as FakeSocket;
    socket.open();
    socket.receive(welcome(2));
    socket.receive({ type: "notifications:batch", notifications: [note(1), note(2)], more: false });
    socket.receive({ type: "notification:new", seq: 3, notification: note(3) });
    await settle();
    expect(follower.getSnapshot().status).toBe("connected");
    expect(follower.getSnapshot().notifications.map((n) => n.seq)).toEqual([3, 2, 1]);
    expect(follower.getSnapshot().unreadCount).toBe(3);

    // a read in the follower goes out on the leader's socket and shows in both at once
    await follower.markAsRead("id-2");
    await settle();
    expect(socket.sent.at(-1)).toEqual({ type: "read", id: "id-2" });
    expect(leader.getSnapshot().unreadCount).toBe(2);
    expect(follower.getSnapshot().unreadCount).toBe(2);

    leader.stop(); // the tab closes: its lock is released
    await settle();
    expect(follower.getSnapshot().isLeader).toBe(true);
    const resumed = FakeSocket.all.at(-1) as FakeSocket;
    expect(resumed).not.toBe(socket);
    resumed.open();
    expect(resumed.sent[0]).toMatchObject({ type: "hello", lastSeq: 3 });
  });
});
