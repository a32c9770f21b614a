/**
 * TocsinClient: the public, framework-free client. It wires the pure state to one socket per
 * browser (the leader tab's), the relay to the other tabs, and the REST feed.
 */
import { Connection } from "./connection.js";
import { LeaderElection, Relay, type RelayMessage } from "./leader.js";
import { RestApi } from "./rest.js";
import { PreferencesApi } from "./preferences.js";
import { attachServiceWorker, disablePush, enablePush, type PushOptions, type PushState, pushState } from "./push.js";
import { NotificationState } from "./state.js";
import { decodeClaims, TokenSource } from "./token.js";
import type {
  CommandFrame,
  ConnectionStatus,
  Notification,
  ServerFrame,
  StateFrame,
  TokenProvider,
} from "./types.js";

export interface TocsinOptions {
  /** WebSocket URL of the gateway, e.g. `wss://notify.example.com/v1/ws`. */
  url: string;
  /** REST base; defaults to `/v1` on the gateway's host. */
  apiBase?: string;
  /** A token, or a function returning one (called again before expiry and after auth failures). */
  token: TokenProvider | string;
  /** Feed page size for `loadMore` (1..100). */
  pageSize?: number;
  /** One socket per browser shared by all tabs (default true). */
  singleSocket?: boolean;
  /** How long a seq gap may stay open (frames reordered in flight) before resuming to fill it. */
  gapGraceMs?: number;
}

export type NotificationSource = "live" | "batch";

export interface TocsinSnapshot {
  /** Newest first (by seq). */
  notifications: readonly Notification[];
  unreadCount: number;
  unseenCount: number;
  status: ConnectionStatus;
  hasMore: boolean;
  loadingMore: boolean;
  isLeader: boolean;
  userId: string | null;
}

type NotificationListener = (notifications: Notification[], source: NotificationSource) => void;

const ACK_DELAY_MS = 200;
const MAX_ANNOUNCED = 5_000;
/** After live notifications, ask the server for its counts once things are quiet. */
const SYNC_COUNT_DELAY_MS = 2_000;

export class TocsinClient {
  private readonly state = new NotificationState();
  private readonly tokens: TokenSource;
  private readonly rest: RestApi;
  private readonly tabId = Math.random().toString(36).slice(2);
  private connection: Connection | null = null;
  private relay: Relay | null = null;
  private election: LeaderElection | null = null;
  private started = false;
  /** Bumped by stop(), so a start() still awaiting its token knows it was cancelled. */
  private generation = 0;
  private statusValue: ConnectionStatus = "idle";
  private userId: string | null = null;

  // resume in progress
  private welcomeLastSeq: number | null = null;
  private batchMax: number | null = null;
  private batchAdded: Notification[] = [];
  private socketCounts = false;

  // feed paging
  private feedCursor: string | null = null;
  private feedLoaded = false;
  private loading = false;

  private ackedSeq: number | null = null;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private gapTimer: ReturnType<typeof setTimeout> | undefined;
  private syncCountTimer: ReturnType<typeof setTimeout> | undefined;
  private expiryTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Ids already reported to onNotifications listeners. Separate from the state: a feed page may
   * load a notification before the socket's backlog delivers it, and it is still news.
   */
  private readonly announced = new Set<string>();

  private readonly listeners = new Set<() => void>();
  private readonly notificationListeners = new Set<NotificationListener>();
  private snapshot: TocsinSnapshot | null = null;

  constructor(private readonly options: TocsinOptions) {
    const provider = options.token;
    this.tokens = new TokenSource(typeof provider === "string" ? () => provider : provider);
    this.rest = new RestApi(options.apiBase ?? defaultApiBase(options.url), this.tokens);
  }

  // ---- lifecycle -----------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const generation = ++this.generation;
    this.setStatus("connecting");
    let sub = "anonymous";
    try {
      sub = decodeClaims(await this.tokens.get()).sub ?? sub;
    } catch {
      // The connection retries the provider with the auth backoff.
    }
    if (generation !== this.generation) return;
    const key = `tocsin:${this.options.url}:${sub}`;
    const shared =
      this.options.singleSocket !== false && typeof BroadcastChannel === "function" && !!navigator.locks;
    if (shared) {
      this.relay = new Relay(key, (message) => this.onRelay(message));
      this.relay.post({ kind: "sync-request", from: this.tabId });
      this.election = new LeaderElection(key);
      this.election.start(() => this.becomeLeader());
    } else {
      this.becomeLeader();
    }
    // A failed first page leaves hasMore true: the bell retries it when scrolled.
    void this.loadMore().catch(() => undefined);
  }

  stop(): void {
    this.started = false;
    this.generation += 1;
    this.connection?.stop();
    this.connection = null;
    this.election?.stop();
    this.election = null;
    this.relay?.close();
    this.relay = null;
    for (const timer of [this.ackTimer, this.gapTimer, this.syncCountTimer, this.expiryTimer]) clearTimeout(timer);
    this.setStatus("idle");
  }

  // ---- reading -------------------------------------------------------------------------

  /** Bound, so it can be handed to useSyncExternalStore as is. */
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  /** Notifications new to this tab: `live` one by one, `batch` for a backlog delivered on (re)connect. */
  onNotifications(listener: NotificationListener): () => void {
    this.notificationListeners.add(listener);
    return () => this.notificationListeners.delete(listener);
  }

  getSnapshot = (): TocsinSnapshot => {
    if (!this.snapshot) {
      const counts = this.state.counts;
      this.snapshot = {
        notifications: this.state.notifications,
        unreadCount: counts.unreadCount,
        unseenCount: counts.unseenCount,
        status: this.statusValue,
        hasMore: !this.feedLoaded || this.feedCursor !== null,
        loadingMore: this.loading,
        isLeader: this.connection !== null,
        userId: this.userId,
      };
    }
    return this.snapshot;
  };

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  /** The next page of older notifications from the REST feed. */
  async loadMore(): Promise<void> {
    if (this.loading || (this.feedLoaded && this.feedCursor === null)) return;
    this.loading = true;
    this.changed();
    try {
      const page = await this.rest.list({ cursor: this.feedCursor, limit: this.options.pageSize ?? 20 });
      // The socket alone drives the resume cursor; feed pages are history.
      this.state.add(page.notifications, { trackSeq: false });
      if (!this.socketCounts) this.state.applyServerCounts(page);
      this.feedCursor = page.nextCursor;
      this.feedLoaded = true;
    } finally {
      this.loading = false;
      this.changed();
    }
  }

  // ---- changing ------------------------------------------------------------------------

  /** Marks one read. `keepalive` sends it over REST so it survives navigating away. */
  async markAsRead(id: string, options: { keepalive?: boolean } = {}): Promise<void> {
    if (this.state.markReadLocal(id, Date.now())) {
      this.relay?.post({ kind: "optimistic", op: "read", id });
      this.optimisticChanged();
    }
    if (options.keepalive) {
      await this.viaRest({ type: "read", id }, true);
    } else {
      await this.command({ type: "read", id });
    }
  }

  async markAllAsRead(): Promise<void> {
    const upToSeq = this.state.markAllReadLocal(Date.now());
    this.relay?.post({ kind: "optimistic", op: "read-all", upToSeq });
    this.optimisticChanged();
    await this.command(upToSeq > 0 ? { type: "read-all", upToSeq } : { type: "read-all" });
  }

  /** The bell was opened: everything so far is seen. */
  async markAllSeen(): Promise<void> {
    if (this.state.counts.unseenCount === 0) return;
    const upToSeq = this.state.markAllSeenLocal(Date.now());
    this.relay?.post({ kind: "optimistic", op: "seen-all", upToSeq });
    this.optimisticChanged();
    await this.command(upToSeq > 0 ? { type: "seen-all", upToSeq } : { type: "seen-all" });
  }

  // ---- leader --------------------------------------------------------------------------

  private becomeLeader(): void {
    if (!this.started) return;
    this.connection = new Connection({
      url: this.options.url,
      tokens: this.tokens,
      lastSeq: () => this.state.cursor,
      onFrame: (frame) => {
        this.handleFrame(frame);
        this.relay?.post({ kind: "frame", frame });
      },
      onStatus: (status) => {
        this.setStatus(status);
        this.relay?.post({ kind: "status", status });
      },
    });
    this.connection.start();
    this.changed();
  }

  private get isLeader(): boolean {
    return this.connection !== null;
  }

  /** Sends on the socket (leader), through the leader (follower), or over REST as the fallback. */
  private async command(frame: CommandFrame): Promise<void> {
    if (this.connection?.isOpen && this.connection.send(frame)) return;
    if (!this.isLeader && this.relay && this.statusValue === "connected") {
      this.relay.post({ kind: "command", frame });
      return;
    }
    await this.viaRest(frame, false);
  }

  /** Performs a command over REST and handles the answer as the state event the socket would bring. */
  private async viaRest(frame: CommandFrame, keepalive: boolean): Promise<void> {
    const at = new Date().toISOString();
    let event: StateFrame | ServerFrame;
    switch (frame.type) {
      case "read": {
        const answer = await this.rest.read(frame.id, keepalive);
        event = { type: "notification:read", ids: [frame.id], at: answer.notification.readAt ?? at, ...counts(answer) };
        break;
      }
      case "read-all": {
        const answer = await this.rest.readAll(frame.upToSeq);
        event = { type: "notifications:read-all", upToSeq: frame.upToSeq ?? null, at, ...counts(answer) };
        break;
      }
      case "seen-all": {
        const answer = await this.rest.seenAll(frame.upToSeq);
        event = { type: "notifications:seen", upToSeq: frame.upToSeq ?? null, at, ...counts(answer) };
        break;
      }
      case "sync-count":
        event = { type: "unread-count", ...counts(await this.rest.unreadCount()) };
        break;
    }
    this.handleFrame(event);
    this.relay?.post({ kind: "frame", frame: event });
  }

  // ---- frames (every tab handles the same frames, relayed by the leader) ---------------

  private handleFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case "welcome":
        this.userId = frame.userId;
        this.welcomeLastSeq = frame.lastSeq;
        this.state.noteNewest(null); // this socket's backlog brings the cursor up to lastSeq
        this.batchMax = null;
        this.batchAdded = [];
        this.ackedSeq = null;
        this.socketCounts = true;
        this.state.applyServerCounts(frame);
        break;
      case "notifications:batch": {
        this.state.add(frame.notifications);
        this.batchAdded.push(...frame.notifications);
        for (const n of frame.notifications) this.batchMax = Math.max(this.batchMax ?? 0, n.seq);
        if (!frame.more) {
          const top = maxOf(this.welcomeLastSeq, this.batchMax);
          this.state.coverUpTo(top);
          const delivered = this.batchAdded;
          this.batchAdded = [];
          this.emit(delivered, "batch");
          this.afterSeqChange();
        }
        break;
      }
      case "notification:new": {
        this.state.add([frame.notification], { live: true });
        this.emit([frame.notification], "live");
        this.afterSeqChange();
        if (this.isLeader) {
          clearTimeout(this.syncCountTimer);
          // Only on a live socket: a reconnect brings fresh counts in its welcome anyway.
          this.syncCountTimer = setTimeout(() => this.connection?.send({ type: "sync-count" }), SYNC_COUNT_DELAY_MS);
        }
        break;
      }
      case "notification:read":
      case "notification:unread":
      case "notification:archived":
      case "notifications:read-all":
      case "notifications:seen":
        this.state.applyState(frame);
        break;
      case "unread-count":
        this.state.applyServerCounts(frame);
        break;
      case "pong":
        // Behind the user's newest seq: a live frame was lost, and the gap timer resumes.
        // Not while a backlog is still coming: it is catching up already.
        if (typeof frame.latestSeq === "number" && this.statusValue === "connected") {
          this.state.noteNewest(frame.latestSeq);
          this.afterSeqChange();
        }
        return;
      default:
        return; // token-accepted, error, reconnect: the connection's business
    }
    this.changed();
  }

  /**
   * Leader only: acknowledge what is held, and resume to fill a gap that does not close (a
   * hole below a held seq, or a cursor below the newest seq a pong reported).
   */
  private afterSeqChange(): void {
    if (!this.isLeader) return;
    const cursor = this.state.cursor;
    if (cursor !== null && cursor > (this.ackedSeq ?? -1) && this.ackTimer === undefined) {
      this.ackTimer = setTimeout(() => {
        this.ackTimer = undefined;
        const seq = this.state.cursor;
        if (seq !== null && seq > (this.ackedSeq ?? -1) && this.connection?.send({ type: "ack", seq })) {
          this.ackedSeq = seq;
        }
      }, ACK_DELAY_MS);
    }
    if (!this.state.gap()) {
      clearTimeout(this.gapTimer);
      this.gapTimer = undefined;
    } else if (this.gapTimer === undefined) {
      this.gapTimer = setTimeout(() => {
        this.gapTimer = undefined;
        // hello.lastSeq = the cursor below the hole: the server sends everything after it.
        if (this.state.gap()) this.connection?.resume();
      }, this.options.gapGraceMs ?? 1_000);
    }
  }

  private onRelay(message: RelayMessage): void {
    switch (message.kind) {
      case "frame":
        if (!this.isLeader) this.handleFrame(message.frame);
        break;
      case "status":
        if (!this.isLeader) this.setStatus(message.status);
        break;
      case "command":
        if (this.isLeader) void this.command(message.frame).catch(() => undefined);
        break;
      case "sync-request":
        if (this.isLeader) {
          this.relay?.post({ kind: "sync", to: message.from, payload: this.state.exportSync(), status: this.statusValue });
        }
        break;
      case "sync":
        if (message.to === this.tabId && !this.isLeader) {
          this.state.importSync(message.payload);
          this.markAnnounced(message.payload.notifications); // the leader's tab already showed them
          this.socketCounts = true;
          this.setStatus(message.status);
          this.changed();
        }
        break;
      case "optimistic": {
        const now = Date.now();
        if (message.op === "read") this.state.markReadLocal(message.id, now);
        else if (message.op === "read-all") this.state.markAllReadLocal(now, message.upToSeq);
        else this.state.markAllSeenLocal(now, message.upToSeq);
        this.optimisticChanged();
        break;
      }
    }
  }

  // ---- plumbing ------------------------------------------------------------------------

  private optimisticChanged(): void {
    clearTimeout(this.expiryTimer);
    const next = this.state.nextExpiry();
    if (next !== null) {
      this.expiryTimer = setTimeout(() => {
        if (this.state.expire(Date.now())) this.changed();
        this.optimisticChanged();
      }, Math.max(0, next - Date.now()) + 10);
    }
    this.changed();
  }

  private emit(notifications: Notification[], source: NotificationSource): void {
    const fresh = notifications.filter((n) => !this.announced.has(n.id));
    if (fresh.length === 0) return;
    this.markAnnounced(fresh);
    for (const listener of this.notificationListeners) listener(fresh, source);
  }

  private markAnnounced(notifications: readonly Notification[]): void {
    for (const n of notifications) this.announced.add(n.id);
    // Bounded: the oldest ids leave first (a Set iterates in insertion order).
    for (const id of this.announced) {
      if (this.announced.size <= MAX_ANNOUNCED) break;
      this.announced.delete(id);
    }
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === this.statusValue) return;
    this.statusValue = status;
    this.changed();
  }

  private changed(): void {
    this.snapshot = null;
    for (const listener of this.listeners) listener();
  }

  // ---- preferences and web push (preferences.ts, push.ts) ------------------------------

  /** The signed-in user's channel preferences and push subscriptions over REST. */
  get preferences(): PreferencesApi {
    let api = preferenceApis.get(this);
    if (!api) {
      api = new PreferencesApi(this.options.apiBase ?? defaultApiBase(this.options.url), this.tokens);
      preferenceApis.set(this, api);
    }
    return api;
  }

  /** Registers the service worker, subscribes this browser and stores the subscription. */
  enablePush(options?: PushOptions): Promise<PushSubscriptionJSON> {
    this.attachServiceWorker();
    return enablePush(this.preferences, options);
  }

  disablePush(options?: PushOptions): Promise<boolean> {
    return disablePush(this.preferences, options);
  }

  /** "on" when this browser holds a push subscription; "unsupported", "denied" or "off". */
  pushState(options?: PushOptions): Promise<PushState> {
    return pushState(options);
  }

  /** Lets the service worker skip pushes this tab showed and mark clicked ones read. */
  attachServiceWorker(): void {
    attachServiceWorker(this);
  }
}

const preferenceApis = new WeakMap<TocsinClient, PreferencesApi>();

function counts(answer: { unreadCount: number; unseenCount: number }): { unreadCount: number; unseenCount: number } {
  return { unreadCount: answer.unreadCount, unseenCount: answer.unseenCount };
}

function maxOf(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/** `wss://host/v1/ws` -> `https://host/v1`. */
export function defaultApiBase(wsUrl: string): string {
  const url = new URL(wsUrl, typeof location !== "undefined" ? location.href : undefined);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = url.pathname.replace(/\/ws\/?$/, "");
  url.search = "";
  return url.toString().replace(/\/$/, "");
}
