import type { Notification } from "../src/client/types.js";

export function note(seq: number, overrides: Partial<Notification> = {}): Notification {
  return {
    id: `id-${seq}`,
    seq,
    type: "message:received",
    title: `Title ${seq}`,
    body: `Body ${seq}`,
    actionUrl: null,
    data: {},
    createdAt: new Date(Date.UTC(2026, 10, 24, 16, 0, seq)).toISOString(),
    expiresAt: null,
    seenAt: null,
    readAt: null,
    archivedAt: null,
    ...overrides,
  };
}

export const counts = (unreadCount: number, unseenCount = unreadCount) => ({ unreadCount, unseenCount });
