/**
 * What the service worker decides, over small interfaces so it runs under test without a
 * browser: parse a push, skip one a tab already showed, build the notification, and on a click
 * open the action URL and get the notification marked read.
 */
import type { PushPayload, SwAnswer, SwRequest } from "./protocol.js";

/** Waiting longer for a tab to answer would delay every notification when a tab is frozen. */
export const ASK_TIMEOUT_MS = 1_000;
const MAX_TEXT = 1_000;

/** A window client: only what the worker uses. */
export interface PageClient {
  readonly url: string;
  ask(message: SwRequest, timeoutMs: number): Promise<SwAnswer | null>;
  focus(): Promise<unknown>;
  /** Loads `url` in this tab; only tabs this worker controls can. */
  navigate(url: string): Promise<unknown>;
}

export interface ClickEnv {
  origin: string;
  pages(): Promise<PageClient[]>;
  openWindow(url: string): Promise<unknown>;
  rememberRead(id: string): Promise<void>;
}

export interface ShownNotification {
  title: string;
  options: NotificationOptions & { data: { id: string; actionUrl: string; type: string } };
}

export function parsePayload(text: string | null | undefined): PushPayload | null {
  if (!text) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  if (typeof v["id"] !== "string" || !v["id"] || typeof v["title"] !== "string") return null;
  return {
    id: v["id"],
    title: v["title"].slice(0, MAX_TEXT),
    body: typeof v["body"] === "string" ? v["body"].slice(0, MAX_TEXT) : "",
    type: typeof v["type"] === "string" ? v["type"] : "",
    actionUrl: typeof v["actionUrl"] === "string" ? v["actionUrl"] : null,
    icon: typeof v["icon"] === "string" ? v["icon"] : undefined,
  };
}

/** An http(s) URL to open, resolved against the origin; anything else opens the origin. */
export function safeUrl(raw: string | null | undefined, origin: string): string {
  const home = new URL("/", origin).href;
  if (!raw) return home;
  try {
    const url = new URL(raw, origin);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : home;
  } catch {
    return home;
  }
}

const ICON_NAMES: Readonly<Record<string, string>> = {
  "order:status_changed": "order",
  "message:received": "message",
  "mention:comment": "mention",
  "task:assigned": "task",
  "payment:processed": "payment",
  "system:alert": "alert",
};

/** The gateway serves one PNG per built-in type under /static/icons/; custom types get the bell. */
export function iconUrl(type: string, origin: string): string {
  return new URL(`/static/icons/${ICON_NAMES[type] ?? "bell"}.png`, origin).href;
}

export function notificationFor(payload: PushPayload, origin: string): ShownNotification {
  const icon = payload.icon ? safeUrl(payload.icon, origin) : iconUrl(payload.type, origin);
  return {
    title: payload.title,
    options: {
      body: payload.body,
      // The tag collapses a second push of the same notification into one.
      tag: payload.id,
      icon,
      data: { id: payload.id, actionUrl: safeUrl(payload.actionUrl, origin), type: payload.type },
    },
  };
}

/** True when some open tab answers that it holds (and so showed) this notification. */
export async function shownInATab(pages: PageClient[], id: string): Promise<boolean> {
  const answers = await Promise.all(pages.map((p) => p.ask({ tocsin: "holds", id }, ASK_TIMEOUT_MS)));
  return answers.some((answer) => answer?.ok === true);
}

/**
 * Start opening the action URL at once (the browser allows it only while the click is fresh),
 * have the open tabs mark the notification read with their tokens, and with none able to,
 * remember the id for the next page. A tab already at the URL is focused instead of opening
 * another; if the browser refuses a new window, an open tab of the site goes to the URL.
 */
export async function handleClick(env: ClickEnv, data: { id: string; actionUrl: string }): Promise<"page" | "remembered"> {
  const target = safeUrl(data.actionUrl, env.origin);
  const pages = await env.pages();
  const same = pages.find((p) => p.url === target);
  const opening = same ? same.focus().then(() => true) : env.openWindow(target).then((win) => win !== null);
  const opened = opening.catch(() => false);
  // Every tab that can is asked at once: marking read twice is harmless, waiting is not.
  const answers = await Promise.all(pages.map((p) => p.ask({ tocsin: "mark-read", id: data.id }, ASK_TIMEOUT_MS)));
  const marked = answers.some((answer) => answer?.ok === true);
  if (!marked) await env.rememberRead(data.id);
  if (!(await opened) && !same) await navigateSomeTab(pages, target);
  return marked ? "page" : "remembered";
}

async function navigateSomeTab(pages: PageClient[], target: string): Promise<void> {
  for (const page of pages) {
    try {
      await page.navigate(target);
      return;
    } catch {
      // not controlled by this worker: try the next tab
    }
  }
}
