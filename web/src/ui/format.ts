/** Presentation rules shared by the React components and the web component. */
import type { Notification } from "../client/types.js";

export const TYPE_ICONS: Readonly<Record<string, string>> = {
  "order:status_changed": "📦",
  "message:received": "💬",
  "mention:comment": "@",
  "task:assigned": "✅",
  "payment:processed": "💳",
  "system:alert": "⚠️",
};
export const DEFAULT_ICON = "🔔";

export function iconFor(type: string): string {
  return TYPE_ICONS[type] ?? DEFAULT_ICON;
}

export function badgeText(count: number): string {
  return count > 99 ? "99+" : String(count);
}

export type CountMode = "unread" | "unseen";

export function bellLabel(count: number, mode: CountMode): string {
  if (count === 0) return `Notifications, none ${mode}`;
  return `Notifications, ${count} ${mode}`;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "just now", "5m ago", "3h ago", "2d ago", then the date. */
export function relativeTime(iso: string, now: number = Date.now()): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const elapsed = Math.max(0, now - then);
  if (elapsed < MINUTE) return "just now";
  if (elapsed < HOUR) return `${Math.floor(elapsed / MINUTE)}m ago`;
  if (elapsed < DAY) return `${Math.floor(elapsed / HOUR)}h ago`;
  if (elapsed < 7 * DAY) return `${Math.floor(elapsed / DAY)}d ago`;
  return new Date(then).toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" });
}

export function announcement(n: Notification): string {
  return n.body ? `${n.title}. ${n.body}` : n.title;
}
