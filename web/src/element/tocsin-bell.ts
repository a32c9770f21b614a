/**
 * <tocsin-bell>: the bell and toasts for pages without React.
 *
 *   <tocsin-bell gateway-url="wss://notify.example.com/v1/ws" token-endpoint="/api/tocsin-token"></tocsin-bell>
 *
 * Attributes: gateway-url (ws(s):// socket URL, or the gateway's http(s) origin), api-base,
 * token-endpoint (GET, answers `{"token": "..."}` or the bare token), count ("unread" | "unseen"),
 * theme ("light" | "dark"), toasts ("off" to disable), toast-duration (ms), preferences ("off"
 * hides the gear that opens the user's channel preferences).
 * Properties: `token` (a string) or `tokenProvider` (a function returning a token or a promise).
 */
import { TocsinClient, type TokenProvider } from "../client/index.js";
import { BellView } from "../ui/bell.js";
import type { CountMode } from "../ui/format.js";
import { ToasterView } from "../ui/toaster.js";
import css from "../ui/tocsin.css";

const OBSERVED = ["gateway-url", "api-base", "token-endpoint", "count", "theme", "toasts", "toast-duration", "preferences"] as const;

export class TocsinBellElement extends HTMLElement {
  static readonly observedAttributes = OBSERVED;

  private client: TocsinClient | null = null;
  private bell: BellView | null = null;
  private toaster: ToasterView | null = null;
  private tokenValue: string | null = null;
  private provider: TokenProvider | null = null;
  private themeObserver: MutationObserver | null = null;
  private readonly mount: HTMLElement;
  private restartQueued = false;

  constructor() {
    super();
    const shadow = this.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = `:host{display:inline-block;vertical-align:middle}\n${css}`;
    this.mount = document.createElement("div");
    shadow.append(style, this.mount);
  }

  get token(): string | null {
    return this.tokenValue;
  }

  set token(value: string | null) {
    this.tokenValue = value;
    this.restart();
  }

  get tokenProvider(): TokenProvider | null {
    return this.provider;
  }

  set tokenProvider(value: TokenProvider | null) {
    this.provider = value;
    this.restart();
  }

  /** The underlying client, for status or custom handling. */
  get tocsin(): TocsinClient | null {
    return this.client;
  }

  open(): void {
    this.bell?.setOpen(true);
  }

  close(): void {
    this.bell?.setOpen(false);
  }

  connectedCallback(): void {
    this.themeObserver = new MutationObserver(() => this.applyTheme());
    this.themeObserver.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    this.restart();
  }

  disconnectedCallback(): void {
    this.themeObserver?.disconnect();
    this.themeObserver = null;
    this.teardown();
  }

  attributeChangedCallback(name: string, oldValue: string | null, newValue: string | null): void {
    if (oldValue === newValue || !this.isConnected) return;
    if (name === "theme") this.applyTheme();
    else this.restart();
  }

  /** Coalesces the burst of attribute callbacks an upgrade fires into one (re)start. */
  private restart(): void {
    if (this.restartQueued) return;
    this.restartQueued = true;
    queueMicrotask(() => {
      this.restartQueued = false;
      this.startNow();
    });
  }

  private startNow(): void {
    this.teardown();
    if (!this.isConnected) return;
    const gateway = this.getAttribute("gateway-url");
    const token = this.tokenSource();
    if (!gateway || !token) return;
    const client = new TocsinClient({
      url: socketUrl(gateway),
      apiBase: this.getAttribute("api-base") ?? undefined,
      token,
    });
    const count: CountMode = this.getAttribute("count") === "unseen" ? "unseen" : "unread";
    this.client = client;
    this.bell = new BellView(this.mount, client, { count, preferences: this.getAttribute("preferences") !== "off" });
    if (this.getAttribute("toasts") !== "off") {
      const duration = Number(this.getAttribute("toast-duration"));
      this.toaster = new ToasterView(this.mount, client, { durationMs: duration > 0 ? duration : undefined });
    }
    this.applyTheme();
    void client.start();
  }

  private teardown(): void {
    this.bell?.destroy();
    this.toaster?.destroy();
    this.client?.stop();
    this.bell = null;
    this.toaster = null;
    this.client = null;
  }

  private tokenSource(): TokenProvider | null {
    if (this.provider) return this.provider;
    const fixed = this.tokenValue;
    if (fixed) return () => this.tokenValue ?? fixed;
    const endpoint = this.getAttribute("token-endpoint");
    return endpoint ? () => fetchToken(endpoint) : null;
  }

  /** Own `theme` attribute first, else the page's <html data-theme>, else prefers-color-scheme. */
  private applyTheme(): void {
    const own = this.getAttribute("theme") ?? document.documentElement.getAttribute("data-theme");
    const theme = own === "light" || own === "dark" ? own : undefined;
    this.bell?.setTheme(theme);
    this.toaster?.setTheme(theme);
  }
}

async function fetchToken(endpoint: string): Promise<string> {
  const response = await fetch(endpoint, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`token endpoint answered ${response.status}`);
  const text = await response.text();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && typeof (parsed as { token?: unknown }).token === "string") {
      return (parsed as { token: string }).token;
    }
  } catch {
    // a bare token
  }
  return text.trim();
}

/** Accepts the socket URL itself, or the gateway origin (`https://host` -> `wss://host/v1/ws`). */
export function socketUrl(gateway: string): string {
  const url = new URL(gateway, location.href);
  if (url.protocol === "http:" || url.protocol === "https:") {
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (url.pathname === "/" || url.pathname === "") url.pathname = "/v1/ws";
  }
  return url.toString();
}

if (!customElements.get("tocsin-bell")) customElements.define("tocsin-bell", TocsinBellElement);

declare global {
  interface HTMLElementTagNameMap {
    "tocsin-bell": TocsinBellElement;
  }
}
