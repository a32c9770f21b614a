import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TocsinClient } from "../src/client/tocsin.js";
import type { ClientFrame, ServerFrame } from "../src/client/types.js";
import { note } from "./fixtures.js";

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

  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
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

  serverClose(code: number): void {
    this.readyState = FakeSocket.CLOSED;
    this.onclose?.({ code });
  }
}

const welcome = (lastSeq: number | null, unread = 0): ServerFrame => ({
  type: "welcome",
  v: 1,
  userId: "u1",
  node: "gw",
  connectionId: "c1",
  lastSeq,
  unreadCount: unread,
  unseenCount: unread,
  heartbeatMs: 25_000,
  tokenExpiresAt: Math.floor(Date.now() / 1000) + 3600,
});

function latest(): FakeSocket {
  const socket = FakeSocket.all.at(-1);
  if (!socket) throw new Error("no socket");
  return socket;
}

async function flush(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

describe("TocsinClient over a socket", () => {
  let tokens: number;
  let client: TocsinClient;

  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
    tokens = 0;
    vi.stubGlobal("WebSocket", FakeSocket);
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ notifications: [], nextCursor: null, unreadCount: 0, unseenCount: 0 }))),
    );
    client = new TocsinClient({
      url: "ws://gw.test/v1/ws",
      singleSocket: false,
      token: () => `token-${++tokens}`,
      gapGraceMs: 500,
    });
  });

  afterEach(() => {
    client.stop();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  async function connect(lastSeq: number | null, backlog: number[] = [], unread = 0): Promise<FakeSocket> {
    await flush();
    const socket = latest();
    socket.open();
    socket.receive(welcome(lastSeq, unread));
    socket.receive({ type: "notifications:batch", notifications: backlog.map((s) => note(s)), more: false });
    return socket;
  }

  it("says hello with the token and no cursor, then acks the backlog cumulatively", async () => {
    const batches: Array<[number[], string]> = [];
    client.onNotifications((list, source) => batches.push([list.map((n) => n.seq), source]));
    void client.start();
    const socket = await connect(3, [1, 2, 3], 3);
    expect(socket.protocols).toEqual(["tocsin.v1"]);
    expect(socket.sent[0]).toEqual({ type: "hello", v: 1, token: "token-1", lastSeq: null });
    expect(client.getSnapshot().status).toBe("connected");
    expect(client.getSnapshot().unreadCount).toBe(3);
    expect(batches).toEqual([[[1, 2, 3], "batch"]]);
    await vi.advanceTimersByTimeAsync(300);
    expect(socket.sent.filter((f) => f.type === "ack")).toEqual([{ type: "ack", seq: 3 }]);
  });

  it("announces a backlog even when the feed page loaded those notifications first", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ notifications: [note(3), note(2), note(1)], nextCursor: null, unreadCount: 3, unseenCount: 3 }))),
    );
    const batches: Array<[number[], string]> = [];
    client.onNotifications((list, source) => batches.push([list.map((n) => n.seq), source]));
    void client.start();
    await flush();
    expect(client.getSnapshot().notifications.length).toBe(3);
    const socket = await connect(3, [1, 2, 3], 3);
    socket.receive({ type: "notifications:batch", notifications: [note(3)], more: false });
    expect(batches).toEqual([[[1, 2, 3], "batch"]]);
  });

  it("resumes after a drop with hello.lastSeq and shows nothing twice", async () => {
    const seen: number[] = [];
    client.onNotifications((list) => seen.push(...list.map((n) => n.seq)));
    void client.start();
    const first = await connect(2, [1, 2], 2);
    first.receive({ type: "notification:new", seq: 3, notification: note(3) });
    first.serverClose(1006);
    expect(client.getSnapshot().status).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(1_000);
    const second = latest();
    expect(second).not.toBe(first);
    second.open();
    expect(second.sent[0]).toMatchObject({ type: "hello", lastSeq: 3 });
    second.receive(welcome(4, 4));
    // the server re-sends 3 (unacked) and 4
    second.receive({ type: "notifications:batch", notifications: [note(3), note(4)], more: false });
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(client.getSnapshot().notifications.map((n) => n.seq)).toEqual([4, 3, 2, 1]);
  });

  it("fills a seq gap by resuming from the cursor when it does not close by itself", async () => {
    void client.start();
    const socket = await connect(5, [5], 1);
    socket.receive({ type: "notification:new", seq: 8, notification: note(8) });
    await vi.advanceTimersByTimeAsync(400);
    expect(FakeSocket.all.length).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    await vi.advanceTimersByTimeAsync(300);
    const resumed = latest();
    expect(resumed).not.toBe(socket);
    resumed.open();
    expect(resumed.sent[0]).toMatchObject({ type: "hello", lastSeq: 5 });
  });

  it("does not resume when the late frame closes the gap in time", async () => {
    void client.start();
    const socket = await connect(5, [5], 1);
    socket.receive({ type: "notification:new", seq: 7, notification: note(7) });
    socket.receive({ type: "notification:new", seq: 6, notification: note(6) });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(FakeSocket.all.length).toBe(1);
    expect(socket.sent.filter((f) => f.type === "ack").at(-1)).toEqual({ type: "ack", seq: 7 });
  });

  it("asks for a fresh token after 4001 and backs off hard", async () => {
    void client.start();
    const socket = await connect(0);
    socket.serverClose(4001);
    expect(client.getSnapshot().status).toBe("unauthorized");
    await flush();
    expect(tokens).toBe(2);
    await vi.advanceTimersByTimeAsync(100);
    expect(FakeSocket.all.length).toBe(1); // no immediate hammering
    await vi.advanceTimersByTimeAsync(5_000);
    expect(FakeSocket.all.length).toBe(2);
    latest().open();
    expect(latest().sent[0]).toMatchObject({ type: "hello", token: "token-2" });
  });

  it("reconnects at once with a fresh token after 4003 (expired)", async () => {
    void client.start();
    const socket = await connect(0);
    socket.serverClose(4003);
    await vi.advanceTimersByTimeAsync(300);
    expect(FakeSocket.all.length).toBe(2);
    latest().open();
    expect(latest().sent[0]).toMatchObject({ type: "hello", token: "token-2" });
  });

  it("waits the server's delay after a reconnect frame and 1012", async () => {
    void client.start();
    const socket = await connect(0);
    socket.receive({ type: "reconnect", delayMs: 3_000 });
    socket.serverClose(1012);
    await vi.advanceTimersByTimeAsync(2_900);
    expect(FakeSocket.all.length).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(FakeSocket.all.length).toBe(2);
  });

  it("stays quiet while offline and reconnects on the online event", async () => {
    void client.start();
    const socket = await connect(0);
    const onLine = vi.spyOn(navigator, "onLine", "get").mockReturnValue(false);
    socket.serverClose(1006);
    expect(client.getSnapshot().status).toBe("offline");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all.length).toBe(1);
    onLine.mockReturnValue(true);
    window.dispatchEvent(new Event("online"));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(FakeSocket.all.length).toBe(2);
  });

  it("sends read on the socket with an optimistic badge, reconciled by the server event", async () => {
    void client.start();
    const socket = await connect(2, [1, 2], 2);
    await client.markAsRead("id-1");
    expect(socket.sent.at(-1)).toEqual({ type: "read", id: "id-1" });
    expect(client.getSnapshot().unreadCount).toBe(1);
    socket.receive({ type: "notification:read", ids: ["id-1"], at: new Date().toISOString(), unreadCount: 1, unseenCount: 2 });
    expect(client.getSnapshot().unreadCount).toBe(1);
    await client.markAllAsRead();
    expect(socket.sent.at(-1)).toEqual({ type: "read-all", upToSeq: 2 });
    expect(client.getSnapshot().unreadCount).toBe(0);
  });
});

describe("heartbeat", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ notifications: [], nextCursor: null, unreadCount: 0, unseenCount: 0 }))),
    );
  });

  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("pings a silent socket and drops it only when the pong never comes", async () => {
    const client = new TocsinClient({ url: "ws://gw.test/v1/ws", singleSocket: false, token: "t" });
    void client.start();
    await flush();
    const socket = latest();
    socket.open();
    socket.receive(welcome(0));
    socket.receive({ type: "notifications:batch", notifications: [], more: false });
    await vi.advanceTimersByTimeAsync(30_000);
    const ping = socket.sent.find((f) => f.type === "ping");
    expect(ping).toBeDefined();
    socket.receive({ type: "pong", t: 1 });
    await vi.advanceTimersByTimeAsync(15_000);
    expect(FakeSocket.all.length).toBe(1);
    // now nothing answers
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all.length).toBeGreaterThan(1);
    client.stop();
  });
});
