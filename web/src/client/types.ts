/** Wire types of Tocsin browser protocol v1 (docs/protocol.md). */

export type BuiltinType =
  | "order:status_changed"
  | "message:received"
  | "mention:comment"
  | "task:assigned"
  | "payment:processed"
  | "system:alert";

export interface Notification {
  id: string;
  seq: number;
  /** One of the built-in types or any producer-defined `namespace:event`. */
  type: BuiltinType | (string & {});
  title: string;
  body: string;
  actionUrl: string | null;
  data: Record<string, unknown>;
  createdAt: string;
  expiresAt: string | null;
  seenAt: string | null;
  readAt: string | null;
  archivedAt: string | null;
}

export interface Counts {
  unreadCount: number;
  unseenCount: number;
}

export interface WelcomeFrame extends Counts {
  type: "welcome";
  v: number;
  userId: string;
  node: string;
  connectionId: string;
  lastSeq: number | null;
  heartbeatMs: number;
  tokenExpiresAt: number;
}

export interface BatchFrame {
  type: "notifications:batch";
  notifications: Notification[];
  more: boolean;
}

export interface NewFrame {
  type: "notification:new";
  seq: number;
  notification: Notification;
}

export interface ReadFrame extends Counts {
  type: "notification:read";
  ids: string[];
  at: string;
}

export interface UnreadFrame extends Counts {
  type: "notification:unread";
  ids: string[];
}

export interface ArchivedFrame extends Counts {
  type: "notification:archived";
  ids: string[];
}

export interface ReadAllFrame extends Counts {
  type: "notifications:read-all";
  upToSeq?: number | null;
  at: string;
}

export interface SeenFrame extends Counts {
  type: "notifications:seen";
  upToSeq?: number | null;
  at: string;
}

export interface CountFrame extends Counts {
  type: "unread-count";
}

export interface PongFrame {
  type: "pong";
  t: number;
  /** The user's newest seq when the server answered; null when its store did not answer. */
  latestSeq?: number | null;
}

export interface TokenAcceptedFrame {
  type: "token-accepted";
  tokenExpiresAt: number;
}

export interface ErrorFrame {
  type: "error";
  code: string;
  message: string;
  ref?: string;
}

export interface ReconnectFrame {
  type: "reconnect";
  delayMs: number;
}

export type StateFrame = ReadFrame | UnreadFrame | ArchivedFrame | ReadAllFrame | SeenFrame;

export type ServerFrame =
  | WelcomeFrame
  | BatchFrame
  | NewFrame
  | StateFrame
  | CountFrame
  | PongFrame
  | TokenAcceptedFrame
  | ErrorFrame
  | ReconnectFrame;

/** Client frames that change or query state; any tab may ask the leader to send one. */
export type CommandFrame =
  | { type: "read"; id: string; ref?: string }
  | { type: "read-all"; upToSeq?: number; ref?: string }
  | { type: "seen-all"; upToSeq?: number; ref?: string }
  | { type: "sync-count"; ref?: string };

export type ClientFrame =
  | { type: "hello"; v: 1; token: string; lastSeq: number | null }
  | { type: "ack"; seq: number }
  | { type: "token"; token: string }
  | { type: "ping"; t: number }
  | CommandFrame;

/**
 * - `idle`: not started or stopped
 * - `connecting`: opening the socket / waiting for welcome and backlog
 * - `connected`: live
 * - `reconnecting`: waiting for the next attempt (backoff)
 * - `offline`: the browser says it is offline; waiting for `online`
 * - `unauthorized`: the token was refused; backing off hard while asking for a new one
 */
export type ConnectionStatus =
  | "idle"
  | "connecting"
  | "connected"
  | "reconnecting"
  | "offline"
  | "unauthorized";

/** Returns a browser JWT for the current user; called again before expiry and after auth closes. */
export type TokenProvider = () => string | Promise<string>;

export interface FeedPage extends Counts {
  notifications: Notification[];
  nextCursor: string | null;
}
