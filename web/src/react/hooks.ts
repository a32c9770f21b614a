import { useCallback, useEffect, useRef, useSyncExternalStore } from "react";
import type { Notification, NotificationSource, TocsinSnapshot } from "../client/index.js";
import { useTocsinClient } from "./context.js";

export interface UseNotifications extends TocsinSnapshot {
  markAsRead: (id: string) => Promise<void>;
  markAllAsRead: () => Promise<void>;
  markAllSeen: () => Promise<void>;
  loadMore: () => Promise<void>;
}

/** The user's notifications, counts and connection status, updated live in every tab. */
export function useNotifications(): UseNotifications {
  const client = useTocsinClient();
  const snapshot = useSyncExternalStore(client.subscribe, client.getSnapshot, client.getSnapshot);
  const markAsRead = useCallback((id: string) => client.markAsRead(id), [client]);
  const markAllAsRead = useCallback(() => client.markAllAsRead(), [client]);
  const markAllSeen = useCallback(() => client.markAllSeen(), [client]);
  const loadMore = useCallback(() => client.loadMore(), [client]);
  return { ...snapshot, markAsRead, markAllAsRead, markAllSeen, loadMore };
}

/** Calls `listener` for notifications new to this tab (for custom toasts, sounds, titles). */
export function useNotificationEvents(
  listener: (notifications: Notification[], source: NotificationSource) => void,
): void {
  const client = useTocsinClient();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => client.onNotifications((list, source) => latest.current(list, source)), [client]);
}
