/**
 * React wrappers around the shared DOM views (src/ui): the bell and the toaster behave and look
 * exactly like <tocsin-bell>. For a custom UI use useNotifications() instead.
 */
import { type ReactNode, useEffect, useRef } from "react";
import { BellView, type BellOptions } from "../ui/bell.js";
import { ToasterView, type ToasterOptions } from "../ui/toaster.js";
import { useTocsinClient } from "./context.js";

export interface NotificationBellProps extends BellOptions {
  className?: string;
}

export function NotificationBell({ className, count, pageSize, navigate, theme, preferences }: NotificationBellProps): ReactNode {
  const client = useTocsinClient();
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<BellView | null>(null);
  const navigateRef = useRef(navigate);
  navigateRef.current = navigate;
  useEffect(() => {
    if (!host.current) return;
    const bell = new BellView(host.current, client, {
      count,
      pageSize,
      preferences,
      navigate: (url) => (navigateRef.current ?? ((u: string) => window.location.assign(u)))(url),
    });
    view.current = bell;
    return () => {
      bell.destroy();
      view.current = null;
    };
  }, [client, count, pageSize, preferences]);
  useEffect(() => view.current?.setTheme(theme), [theme, count, pageSize, preferences]);
  return <div ref={host} className={className} style={{ display: "contents" }} />;
}

export interface ToasterProps extends ToasterOptions {
  className?: string;
}

export function Toaster({ className, durationMs, max, navigate, theme }: ToasterProps): ReactNode {
  const client = useTocsinClient();
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<ToasterView | null>(null);
  const navigateRef = useRef(navigate);
  navigateRef.current = navigate;
  useEffect(() => {
    if (!host.current) return;
    const toaster = new ToasterView(host.current, client, {
      durationMs,
      max,
      navigate: (url) => (navigateRef.current ?? ((u: string) => window.location.assign(u)))(url),
    });
    view.current = toaster;
    return () => {
      toaster.destroy();
      view.current = null;
    };
  }, [client, durationMs, max]);
  useEffect(() => view.current?.setTheme(theme), [theme, durationMs, max]);
  return <div ref={host} className={className} style={{ display: "contents" }} />;
}
