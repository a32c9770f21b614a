/** The preferences panel's rules, free of the DOM: what a toggle shows and what Save sends. */
import type { Channel, ChannelDefaults, Preferences, QuietHours } from "../client/preferences.js";
import { CHANNELS, normalizePreferences } from "../client/preferences.js";
import { TYPE_ICONS } from "./format.js";

export const CHANNEL_LABELS: Readonly<Record<Channel, string>> = { push: "Push", email: "Email" };

export const TYPE_LABELS: Readonly<Record<string, string>> = {
  "order:status_changed": "Order updates",
  "message:received": "Messages",
  "mention:comment": "Mentions",
  "task:assigned": "Task assignments",
  "payment:processed": "Payments",
  "system:alert": "System alerts",
};

export function typeLabel(type: string): string {
  return TYPE_LABELS[type] ?? type;
}

/** Rows of the table: the built-in types, then any other type the user has a rule for. */
export function rowTypes(prefs: Preferences, defaults: ChannelDefaults | null): string[] {
  const types = [...Object.keys(defaults?.types ?? TYPE_ICONS)];
  for (const channel of CHANNELS) {
    for (const type of Object.keys(prefs.channels[channel])) if (type !== "*" && !types.includes(type)) types.push(type);
  }
  return types;
}

/** Whether `channel` carries `type`: the type's own rule, else the channel's "*", else the default. */
export function effective(prefs: Preferences, defaults: ChannelDefaults | null, channel: Channel, type: string): boolean {
  const rules = prefs.channels[channel];
  if (type in rules) return rules[type] === true;
  if ("*" in rules) return rules["*"] === true;
  const base = defaults ? (defaults.types[type] ?? defaults.custom) : [];
  return base.includes(channel);
}

/** A copy with the user's choice for one cell, written as the type's own rule. */
export function withRule(prefs: Preferences, channel: Channel, type: string, on: boolean): Preferences {
  const next = normalizePreferences(prefs);
  next.channels[channel][type] = on;
  return next;
}

export function withQuietHours(prefs: Preferences, quietHours: QuietHours | null): Preferences {
  return { ...normalizePreferences(prefs), quietHours: quietHours ? { ...quietHours } : null };
}

export function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

const FALLBACK_ZONES = ["UTC", "Europe/London", "Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"];

/** Every zone the browser knows (sorted), with `current` in it even if the browser lacks it. */
export function timeZones(current: string): string[] {
  let zones: string[];
  try {
    zones = (Intl as unknown as { supportedValuesOf(key: string): string[] }).supportedValuesOf("timeZone");
  } catch {
    zones = FALLBACK_ZONES;
  }
  const all = new Set([...zones, "UTC", current]);
  return [...all].sort();
}

export const DEFAULT_QUIET_HOURS: Omit<QuietHours, "timeZone"> = { start: "22:00", end: "07:00" };
