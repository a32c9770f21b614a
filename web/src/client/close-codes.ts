/** What the client does after each close code of docs/protocol.md ("Close codes"). */
export type RetryKind =
  /** Do not reconnect (normal close). */
  | "stop"
  /** Reconnect after the network backoff. */
  | "backoff"
  /** Reconnect immediately (with a little jitter): the cursor makes resuming cheap. */
  | "now"
  /** Reconnect after the delay the server announced in its `reconnect` frame. */
  | "server-delay"
  /** A refused token, a client bug or a full per-user socket cap: back off hard (seconds to minutes). */
  | "hard";

export interface ClosePolicy {
  retry: RetryKind;
  freshToken: boolean;
}

export function closePolicy(code: number): ClosePolicy {
  switch (code) {
    case 1000:
      return { retry: "stop", freshToken: false };
    case 1003: // unsupported data
    case 1008: // policy violation
      return { retry: "hard", freshToken: false };
    case 1012:
      return { retry: "server-delay", freshToken: false };
    case 4001:
      return { retry: "hard", freshToken: true };
    case 4003:
      return { retry: "now", freshToken: true };
    case 4009:
      return { retry: "now", freshToken: false };
    case 4013: // too many sockets for this user on this node: hammering only keeps it full
      return { retry: "hard", freshToken: false };
    default: // 1006 abnormal, 1009, 1011, 4004, 4008 and anything unknown
      return { retry: "backoff", freshToken: false };
  }
}
