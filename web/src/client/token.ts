import type { TokenProvider } from "./types.js";

/** Reads a JWT's claims without verifying it: only to key per-user locks and plan refreshes. */
export function decodeClaims(token: string): { sub?: string; exp?: number } {
  const part = token.split(".")[1];
  if (!part) return {};
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const claims: unknown = JSON.parse(json);
    return typeof claims === "object" && claims !== null ? (claims as { sub?: string; exp?: number }) : {};
  } catch {
    return {};
  }
}

/** Caches the current token and shares one in-flight request between callers. */
export class TokenSource {
  private token: string | null = null;
  private inflight: Promise<string> | null = null;

  constructor(private readonly provider: TokenProvider) {}

  /** `fresh` asks the provider again (before expiry, or after the server refused the token). */
  get(fresh = false): Promise<string> {
    if (!fresh && this.token && !this.expiresSoon(this.token)) return Promise.resolve(this.token);
    if (!this.inflight) {
      this.inflight = Promise.resolve()
        .then(() => this.provider())
        .then((token) => {
          this.token = token;
          return token;
        })
        .finally(() => {
          this.inflight = null;
        });
    }
    return this.inflight;
  }

  get current(): string | null {
    return this.token;
  }

  private expiresSoon(token: string): boolean {
    const { exp } = decodeClaims(token);
    return typeof exp === "number" && exp * 1000 - Date.now() < 30_000;
  }
}

/** When to fetch the next token: a minute before expiry, or halfway for short-lived tokens. */
export function refreshDelayMs(expiresAtSeconds: number, now: number): number {
  const remaining = expiresAtSeconds * 1000 - now;
  const lead = Math.min(60_000, remaining / 2);
  return Math.max(1_000, remaining - lead);
}
