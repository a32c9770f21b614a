import type { TokenSource } from "./token.js";
import type { Counts, FeedPage, Notification } from "./types.js";

export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The gateway's browser REST API (docs/protocol.md, "REST"). */
export class RestApi {
  constructor(
    private readonly base: string,
    private readonly tokens: TokenSource,
  ) {}

  list(params: { cursor?: string | null; limit?: number; unread?: boolean } = {}): Promise<FeedPage> {
    const query = new URLSearchParams();
    if (params.cursor) query.set("cursor", params.cursor);
    if (params.limit) query.set("limit", String(params.limit));
    if (params.unread) query.set("unread", "true");
    const qs = query.toString();
    return this.request<FeedPage>("GET", `/notifications${qs ? `?${qs}` : ""}`);
  }

  unreadCount(): Promise<Counts> {
    return this.request<Counts>("GET", "/notifications/unread-count");
  }

  /** `keepalive` lets the request finish while the page navigates away (toast click). */
  read(id: string, keepalive = false): Promise<Counts & { notification: Notification }> {
    return this.request("POST", `/notifications/${encodeURIComponent(id)}/read`, undefined, keepalive);
  }

  readAll(upToSeq?: number): Promise<Counts & { updated: number }> {
    return this.request("POST", "/notifications/read-all", upToSeq === undefined ? {} : { upToSeq });
  }

  seenAll(upToSeq?: number): Promise<Counts & { updated: number }> {
    return this.request("POST", "/notifications/seen-all", upToSeq === undefined ? {} : { upToSeq });
  }

  private async request<T>(method: string, path: string, body?: unknown, keepalive = false): Promise<T> {
    let response = await this.send(method, path, body, keepalive, false);
    if (response.status === 401) response = await this.send(method, path, body, keepalive, true);
    const payload: unknown = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (payload as { error?: { code?: string; message?: string } } | null)?.error;
      throw new RestError(response.status, error?.code ?? "http_error", error?.message ?? response.statusText);
    }
    return payload as T;
  }

  private async send(method: string, path: string, body: unknown, keepalive: boolean, freshToken: boolean): Promise<Response> {
    const token = await this.tokens.get(freshToken);
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive,
      credentials: "omit",
    });
  }
}
