/**
 * One WebSocket to a gateway and its whole life: hello, heartbeat, token refresh, close codes,
 * backoff, offline and hidden-tab behaviour. It knows nothing of notifications: frames go to
 * `onFrame` and the resume cursor comes from `lastSeq()`.
 */
import { AUTH_BACKOFF, Backoff, HIDDEN_MIN_DELAY_MS, NETWORK_BACKOFF } from "./backoff.js";
import { closePolicy } from "./close-codes.js";
import { refreshDelayMs, type TokenSource } from "./token.js";
import type { ClientFrame, ConnectionStatus, ServerFrame } from "./types.js";

export const SUBPROTOCOL = "tocsin.v1";
/** A connection that stayed up this long resets the backoff. */
export const STABLE_AFTER_MS = 10_000;
const PONG_GRACE_MS = 10_000;

export interface ConnectionOptions {
  url: string;
  tokens: TokenSource;
  lastSeq: () => number | null;
  onFrame: (frame: ServerFrame) => void;
  onStatus: (status: ConnectionStatus) => void;
}

export class Connection {
  private ws: WebSocket | null = null;
  private statusValue: ConnectionStatus = "idle";
  private running = false;
  private readonly network = new Backoff(NETWORK_BACKOFF);
  private readonly auth = new Backoff(AUTH_BACKOFF);
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private stableTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private lastFrameAt = 0;
  private serverDelayMs: number | null = null;
  private readonly cleanups: Array<() => void> = [];

  constructor(private readonly options: ConnectionOptions) {}

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN && this.statusValue === "connected";
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.listen(window, "online", () => this.retrySoon());
    this.listen(window, "offline", () => {
      if (!this.ws) this.waitForOnline();
    });
    this.listen(document, "visibilitychange", () => {
      // A hidden tab waited long; once visible again it should not wait out the rest.
      if (!document.hidden && this.retryTimer !== undefined) this.retrySoon();
    });
    void this.connect();
  }

  stop(): void {
    this.running = false;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.clearTimers();
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      detach(ws);
      ws.close(1000, "client stopped");
    }
    this.setStatus("idle");
  }

  /** Sends when live; returns false so the caller can fall back to REST. */
  send(frame: ClientFrame): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Drops the socket and resumes by cursor at once (used to fill a seq gap). */
  resume(): void {
    if (!this.running) return;
    this.drop();
    this.schedule(0);
  }

  private async connect(): Promise<void> {
    this.retryTimer = undefined;
    if (!this.running) return;
    if (!navigator.onLine) {
      this.waitForOnline();
      return;
    }
    this.setStatus("connecting");
    let token: string;
    try {
      token = await this.options.tokens.get();
    } catch {
      this.setStatus("unauthorized");
      this.schedule(this.auth.next());
      return;
    }
    if (!this.running) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.options.url, [SUBPROTOCOL]);
    } catch {
      this.schedule(this.network.next());
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.lastFrameAt = Date.now();
      ws.send(JSON.stringify({ type: "hello", v: 1, token, lastSeq: this.options.lastSeq() } satisfies ClientFrame));
    };
    ws.onmessage = (event: MessageEvent) => this.receive(event);
    ws.onclose = (event: CloseEvent) => this.closed(ws, event.code);
    // An error is always followed by a close event; the close decides what happens next.
    ws.onerror = () => undefined;
  }

  private receive(event: MessageEvent): void {
    this.lastFrameAt = Date.now();
    if (typeof event.data !== "string") return;
    let frame: ServerFrame;
    try {
      frame = JSON.parse(event.data) as ServerFrame;
    } catch {
      return;
    }
    switch (frame.type) {
      case "welcome":
        this.auth.reset();
        this.startHeartbeat(frame.heartbeatMs);
        this.planRefresh(frame.tokenExpiresAt);
        break;
      case "notifications:batch":
        if (!frame.more) {
          this.setStatus("connected");
          clearTimeout(this.stableTimer);
          this.stableTimer = setTimeout(() => this.network.reset(), STABLE_AFTER_MS);
        }
        break;
      case "token-accepted":
        this.planRefresh(frame.tokenExpiresAt);
        break;
      case "reconnect":
        this.serverDelayMs = frame.delayMs;
        break;
      default:
        break;
    }
    this.options.onFrame(frame);
  }

  private closed(ws: WebSocket, code: number): void {
    if (ws !== this.ws) return;
    this.ws = null;
    this.clearTimers();
    if (!this.running) return;
    const policy = closePolicy(code);
    if (policy.freshToken) void this.options.tokens.get(true).catch(() => undefined);
    switch (policy.retry) {
      case "stop":
        this.running = false;
        this.setStatus("idle");
        return;
      case "now":
        this.schedule(Math.floor(Math.random() * 250));
        return;
      case "server-delay": {
        const delay = this.serverDelayMs ?? this.network.next();
        this.serverDelayMs = null;
        this.schedule(delay);
        return;
      }
      case "hard":
        this.setStatus(code === 4001 ? "unauthorized" : "reconnecting");
        this.schedule(this.auth.next(), true);
        return;
      case "backoff":
        this.schedule(this.network.next());
        return;
    }
  }

  /** Abandons the current socket without waiting for a close handshake a dead peer never sends. */
  private drop(): void {
    const ws = this.ws;
    this.ws = null;
    this.clearTimers();
    if (ws) {
      detach(ws);
      try {
        ws.close(4000, "client resuming");
      } catch {
        // already closing
      }
    }
  }

  private schedule(delayMs: number, keepStatus = false): void {
    clearTimeout(this.retryTimer);
    if (!this.running) return;
    if (!navigator.onLine) {
      this.waitForOnline();
      return;
    }
    const delay = document.hidden ? Math.max(delayMs, HIDDEN_MIN_DELAY_MS) : delayMs;
    if (!keepStatus) this.setStatus("reconnecting");
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }

  private retrySoon(): void {
    if (!this.running || this.ws) return;
    clearTimeout(this.retryTimer);
    // Many tabs/devices come back online together: spread them a little.
    this.retryTimer = setTimeout(() => void this.connect(), Math.floor(Math.random() * 1000));
  }

  private waitForOnline(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.setStatus("offline");
  }

  private startHeartbeat(heartbeatMs: number): void {
    clearInterval(this.heartbeatTimer);
    const interval = heartbeatMs > 0 ? heartbeatMs : 25_000;
    let pingSentAt: number | null = null;
    this.heartbeatTimer = setInterval(() => {
      const now = Date.now();
      if (pingSentAt !== null && this.lastFrameAt < pingSentAt) {
        // Judge only a ping that had time for its pong: a hidden tab's throttled timers may
        // fire a minute late, which alone says nothing about the socket.
        if (now - pingSentAt > PONG_GRACE_MS) {
          this.drop();
          this.schedule(this.network.next());
        }
      } else if (now - this.lastFrameAt >= interval) {
        pingSentAt = now;
        this.send({ type: "ping", t: now });
      }
    }, Math.min(interval, PONG_GRACE_MS));
  }

  private planRefresh(expiresAt: number): void {
    clearTimeout(this.refreshTimer);
    if (!expiresAt) return;
    this.refreshTimer = setTimeout(() => {
      this.options.tokens
        .get(true)
        .then((token) => this.send({ type: "token", token }))
        .catch(() => undefined);
    }, refreshDelayMs(expiresAt, Date.now()));
  }

  private clearTimers(): void {
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.stableTimer);
    clearTimeout(this.refreshTimer);
    this.heartbeatTimer = undefined;
    this.stableTimer = undefined;
    this.refreshTimer = undefined;
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === this.statusValue) return;
    this.statusValue = status;
    this.options.onStatus(status);
  }

  private listen(target: EventTarget, type: string, handler: () => void): void {
    target.addEventListener(type, handler);
    this.cleanups.push(() => target.removeEventListener(type, handler));
  }
}

function detach(ws: WebSocket): void {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = null;
}
