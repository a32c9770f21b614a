/**
 * Web push in the page: register the service worker, subscribe with the gateway's VAPID key and
 * store the subscription (enablePush), undo it (disablePush), and answer the worker's questions
 * (attachServiceWorker): "does this tab hold notification X?" and "mark X read".
 */
import { SW_PATH, isSwRequest, type SwAnswer, type SwRequest } from "../sw/protocol.js";
import type { PreferencesApi } from "./preferences.js";

/** What push needs from a client: its notifications and a way to mark one read. */
export interface PushHost {
  getSnapshot(): { notifications: readonly { id: string }[] };
  markAsRead(id: string): Promise<void>;
}

export interface PushOptions {
  /** Where the worker script is served; default the gateway's `/tocsin-sw.js` on this origin. */
  serviceWorkerUrl?: string;
  /** Registration scope; default "/" (the gateway sends `Service-Worker-Allowed: /`). */
  scope?: string;
}

export type PushState = "unsupported" | "denied" | "off" | "on";

export class PushUnavailableError extends Error {
  constructor(
    readonly reason: "unsupported" | "denied" | "not_configured",
    message: string,
  ) {
    super(message);
  }
}

export function pushSupported(): boolean {
  return typeof navigator !== "undefined" && "serviceWorker" in navigator && typeof PushManager !== "undefined" && typeof Notification !== "undefined";
}

/** "on" when this browser holds a subscription (the server may still have dropped it). */
export async function pushState(options: PushOptions = {}): Promise<PushState> {
  if (!pushSupported()) return "unsupported";
  if (Notification.permission === "denied") return "denied";
  const registration = await navigator.serviceWorker.getRegistration(options.scope ?? "/");
  const subscription = await registration?.pushManager.getSubscription();
  return subscription ? "on" : "off";
}

export async function registerServiceWorker(options: PushOptions = {}): Promise<ServiceWorkerRegistration> {
  if (!pushSupported()) throw new PushUnavailableError("unsupported", "this browser has no web push");
  await navigator.serviceWorker.register(options.serviceWorkerUrl ?? SW_PATH, { scope: options.scope ?? "/" });
  return navigator.serviceWorker.ready;
}

export async function enablePush(api: PreferencesApi, options: PushOptions = {}): Promise<PushSubscriptionJSON> {
  const registration = await registerServiceWorker(options);
  if ((await Notification.requestPermission()) !== "granted") {
    throw new PushUnavailableError("denied", "notifications are not allowed for this site");
  }
  const key = await api.publicKey();
  if (!key) throw new PushUnavailableError("not_configured", "the gateway has no VAPID key (TOCSIN_VAPID_PUBLIC_KEY)");
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
    await subscription.unsubscribe(); // the server's key changed: the old one can no longer push
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlBytes(key) });
  const json = subscription.toJSON();
  await api.addSubscription(json);
  return json;
}

/** Unsubscribes this browser and forgets it on the server; false when it had no subscription. */
export async function disablePush(api: PreferencesApi, options: PushOptions = {}): Promise<boolean> {
  if (!pushSupported()) return false;
  const registration = await navigator.serviceWorker.getRegistration(options.scope ?? "/");
  const subscription = await registration?.pushManager.getSubscription();
  if (!subscription) return false;
  await api.removeSubscription(subscription.endpoint).catch(() => undefined); // 404: already gone
  await subscription.unsubscribe();
  return true;
}

const attached = new WeakSet<PushHost>();

/**
 * Answers the worker for this page's client, and marks read what was clicked while no page was
 * open. Idempotent per client; the bell calls it, pages without the bell call it themselves.
 */
export function attachServiceWorker(host: PushHost): void {
  if (typeof navigator === "undefined" || !("serviceWorker" in navigator) || attached.has(host)) return;
  attached.add(host);
  const container = navigator.serviceWorker;
  container.addEventListener("message", (event: MessageEvent) => {
    const port = event.ports[0];
    if (!port || !isSwRequest(event.data)) return;
    void answer(host, event.data).then((reply) => port.postMessage(reply));
  });
  container.startMessages();
  void markPendingReads(host).catch(() => undefined);
}

async function answer(host: PushHost, request: SwRequest): Promise<SwAnswer> {
  if (request.tocsin === "holds") {
    return { ok: host.getSnapshot().notifications.some((n) => n.id === request.id) };
  }
  if (request.tocsin === "mark-read") {
    try {
      await host.markAsRead(request.id);
      return { ok: true };
    } catch {
      return { ok: false };
    }
  }
  return { ok: false };
}

async function markPendingReads(host: PushHost): Promise<void> {
  const registration = await navigator.serviceWorker.getRegistration();
  const worker = registration?.active;
  if (!worker) return;
  const { ids = [] } = await ask(worker, { tocsin: "pending-reads" });
  const done: string[] = [];
  for (const id of ids) {
    // A notification of another user (or deleted) is refused by the server: forget it too.
    await host.markAsRead(id).catch(() => undefined);
    done.push(id);
  }
  if (done.length > 0) await ask(worker, { tocsin: "reads-done", ids: done });
}

function ask(worker: ServiceWorker, message: SwRequest, timeoutMs = 2_000): Promise<SwAnswer> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve({}), timeoutMs);
    channel.port1.onmessage = (event: MessageEvent<SwAnswer>) => {
      clearTimeout(timer);
      resolve(event.data ?? {});
    };
    worker.postMessage(message, [channel.port2]);
  });
}

export function base64UrlBytes(value: string): Uint8Array<ArrayBuffer> {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function sameKey(current: ArrayBuffer | null, key: string): boolean {
  if (!current) return false;
  const a = new Uint8Array(current);
  const b = base64UrlBytes(key);
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
