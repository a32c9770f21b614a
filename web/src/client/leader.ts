/**
 * One socket per browser: the tabs of one user elect a leader with a Web Lock. The lock is held
 * for as long as the leader tab lives and is released by the browser when it closes or crashes,
 * so the next waiting tab takes over without any heartbeat of our own.
 */
import type { SyncPayload } from "./state.js";
import type { CommandFrame, ConnectionStatus, ServerFrame } from "./types.js";

export type RelayMessage =
  /** leader -> all: a frame from the server, handled by every tab exactly as the leader does */
  | { kind: "frame"; frame: ServerFrame }
  | { kind: "status"; status: ConnectionStatus }
  /** any -> leader: send this on the socket */
  | { kind: "command"; frame: CommandFrame }
  /** new tab -> leader: send me what you hold */
  | { kind: "sync-request"; from: string }
  | { kind: "sync"; to: string; payload: SyncPayload; status: ConnectionStatus }
  /** any -> all: an optimistic change, so every tab updates at once */
  | { kind: "optimistic"; op: "read"; id: string }
  | { kind: "optimistic"; op: "read-all" | "seen-all"; upToSeq: number };

export class Relay {
  private readonly channel: BroadcastChannel | null;

  constructor(name: string, onMessage: (message: RelayMessage) => void) {
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(name) : null;
    if (this.channel) this.channel.onmessage = (event: MessageEvent) => onMessage(event.data as RelayMessage);
  }

  get available(): boolean {
    return this.channel !== null;
  }

  post(message: RelayMessage): void {
    this.channel?.postMessage(message);
  }

  close(): void {
    this.channel?.close();
  }
}

export class LeaderElection {
  private release: (() => void) | null = null;
  private abort = new AbortController();
  private leader = false;

  constructor(private readonly lockName: string) {}

  get isLeader(): boolean {
    return this.leader;
  }

  /** Calls `onLeader` once this tab holds the lock (at once when Web Locks are missing). */
  start(onLeader: () => void): void {
    const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
    if (!locks) {
      this.leader = true;
      onLeader();
      return;
    }
    locks
      .request(this.lockName, { signal: this.abort.signal }, () => {
        this.leader = true;
        onLeader();
        return new Promise<void>((resolve) => {
          this.release = resolve;
        });
      })
      .catch(() => undefined); // aborted by stop()
  }

  stop(): void {
    this.abort.abort();
    this.abort = new AbortController();
    this.release?.();
    this.release = null;
    this.leader = false;
  }
}
