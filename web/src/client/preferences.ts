/** The user's own channel preferences and web push subscriptions over the gateway's REST API
 * (docs/protocol.md, "Preferences and push subscriptions"). */
import { RestError } from "./rest.js";
import type { TokenSource } from "./token.js";

export const CHANNELS = ["push", "email"] as const;
export type Channel = (typeof CHANNELS)[number];
/** "*" is the channel's rule for every type without its own. */
export type ChannelRules = Record<string, boolean>;

export interface QuietHours {
  /** "HH:MM", 24-hour, in `timeZone`; a period may cross midnight ("22:00" to "07:00"). */
  start: string;
  end: string;
  /** IANA name, e.g. "Europe/Paris". */
  timeZone: string;
}

export interface Preferences {
  channels: Record<Channel, ChannelRules>;
  quietHours: QuietHours | null;
}

export interface ChannelDefaults {
  types: Record<string, Channel[]>;
  custom: Channel[];
}

/** A refused request; `field` names the bad value on a 422 (e.g. "quietHours.timeZone"). */
export class FieldError extends RestError {
  constructor(
    status: number,
    code: string,
    message: string,
    readonly field: string | null,
  ) {
    super(status, code, message);
  }
}

export class PreferencesApi {
  constructor(
    private readonly base: string,
    private readonly tokens: TokenSource,
  ) {}

  get(): Promise<Preferences> {
    return this.request("GET", "/preferences");
  }

  put(preferences: Preferences): Promise<Preferences> {
    return this.request("PUT", "/preferences", preferences);
  }

  /** Each built-in type's channels before preferences, and custom types' (`custom`). */
  defaults(): Promise<ChannelDefaults> {
    return this.request("GET", "/preferences/defaults");
  }

  /** The VAPID key for `pushManager.subscribe`; null when the gateway has web push off. */
  async publicKey(): Promise<string | null> {
    try {
      return (await this.request<{ publicKey: string }>("GET", "/push/public-key")).publicKey;
    } catch (error) {
      if (error instanceof RestError && error.code === "not_configured") return null;
      throw error;
    }
  }

  addSubscription(subscription: PushSubscriptionJSON): Promise<{ endpoint: string }> {
    return this.request("POST", "/push-subscriptions", subscription);
  }

  async removeSubscription(endpoint: string): Promise<void> {
    await this.request("DELETE", "/push-subscriptions", { endpoint });
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response = await this.send(method, path, body, false);
    if (response.status === 401) response = await this.send(method, path, body, true);
    const payload: unknown = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const error = (payload as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
      throw new FieldError(response.status, error?.code ?? "http_error", error?.message ?? response.statusText, error?.field ?? null);
    }
    return payload as T;
  }

  private async send(method: string, path: string, body: unknown, fresh: boolean): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${await this.tokens.get(fresh)}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    });
  }
}

/** Copy with every channel present, so views can read `channels.push` without checks. */
export function normalizePreferences(value: Partial<Preferences> | null | undefined): Preferences {
  const channels = { push: {}, email: {} } as Record<Channel, ChannelRules>;
  for (const channel of CHANNELS) channels[channel] = { ...(value?.channels?.[channel] ?? {}) };
  return { channels, quietHours: value?.quietHours ? { ...value.quietHours } : null };
}
