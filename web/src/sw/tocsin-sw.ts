/**
 * The Tocsin service worker, served by the gateway at /tocsin-sw.js (root scope). It shows web
 * push messages as system notifications unless an open tab already showed the notification, and
 * on a click opens the action URL and has a tab mark the notification read (protocol.ts).
 *
 * It never holds a token: marking read is done by a page with its own token; a click with no
 * page able to do it is remembered in IndexedDB and done by the next page that attaches.
 */
import { handleClick, notificationFor, parsePayload, shownInATab, type PageClient } from "./logic.js";
import { isSwRequest, type SwAnswer, type SwRequest } from "./protocol.js";

// The DOM library is this project's lib; these are the few worker types used here.
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface PushEvent extends ExtendableEvent {
  readonly data: { text(): string } | null;
}
interface NotificationEvent extends ExtendableEvent {
  readonly notification: Notification;
}
interface ExtendableMessageEvent extends ExtendableEvent {
  readonly data: unknown;
  readonly ports: readonly MessagePort[];
}
interface WindowClient {
  readonly url: string;
  postMessage(message: unknown, transfer: Transferable[]): void;
  focus(): Promise<WindowClient>;
  navigate(url: string): Promise<WindowClient | null>;
}
interface WorkerScope {
  readonly registration: ServiceWorkerRegistration;
  readonly location: Location;
  readonly clients: {
    matchAll(options: { type: "window"; includeUncontrolled: boolean }): Promise<WindowClient[]>;
    openWindow(url: string): Promise<WindowClient | null>;
    claim(): Promise<void>;
  };
  skipWaiting(): Promise<void>;
  addEventListener(type: string, listener: (event: never) => void): void;
}

const sw = self as unknown as WorkerScope;
const origin = sw.location.origin;

function pageClient(client: WindowClient): PageClient {
  return {
    url: client.url,
    focus: () => client.focus(),
    navigate: (url) => client.navigate(url),
    ask: (message, timeoutMs) =>
      new Promise<SwAnswer | null>((resolve) => {
        const channel = new MessageChannel();
        const timer = setTimeout(() => resolve(null), timeoutMs);
        channel.port1.onmessage = (event: MessageEvent<SwAnswer>) => {
          clearTimeout(timer);
          resolve(event.data);
        };
        client.postMessage(message, [channel.port2]);
      }),
  };
}

async function pages(): Promise<PageClient[]> {
  const windows = await sw.clients.matchAll({ type: "window", includeUncontrolled: true });
  return windows.map(pageClient);
}

// ---- ids clicked while no page could mark them read (IndexedDB "tocsin-sw", store "reads") ----

const MAX_PENDING = 200;

function database(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("tocsin-sw", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("reads");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T> | void): Promise<T | undefined> {
  const db = await database();
  try {
    return await new Promise<T | undefined>((resolve, reject) => {
      const tx = db.transaction("reads", mode);
      const request = work(tx.objectStore("reads"));
      tx.oncomplete = () => resolve(request ? request.result : undefined);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

async function rememberRead(id: string): Promise<void> {
  const ids = (await withStore<IDBValidKey[]>("readonly", (store) => store.getAllKeys())) ?? [];
  if (ids.length >= MAX_PENDING) return; // bounded; the user can still read it in the bell
  await withStore("readwrite", (store) => store.put(Date.now(), id));
}

async function pendingReads(): Promise<string[]> {
  const ids = (await withStore<IDBValidKey[]>("readonly", (store) => store.getAllKeys())) ?? [];
  return ids.filter((id): id is string => typeof id === "string");
}

async function forgetReads(ids: readonly unknown[]): Promise<void> {
  await withStore("readwrite", (store) => {
    for (const id of ids) if (typeof id === "string") store.delete(id);
  });
}

// ---- events ------------------------------------------------------------------------------

async function onPush(text: string | null): Promise<void> {
  const payload = parsePayload(text);
  if (!payload) return;
  if (await shownInATab(await pages(), payload.id)) return;
  const shown = notificationFor(payload, origin);
  await sw.registration.showNotification(shown.title, shown.options);
}

/** The click handler, also callable as `self.tocsin.click(notification)` (see web/README.md). */
async function onClick(notification: Notification): Promise<string> {
  notification.close();
  const data = notification.data as { id?: unknown; actionUrl?: unknown } | null;
  if (typeof data?.id !== "string") return "ignored";
  const env = { origin, pages, openWindow: (url: string) => sw.clients.openWindow(url), rememberRead };
  return handleClick(env, { id: data.id, actionUrl: typeof data.actionUrl === "string" ? data.actionUrl : "/" });
}

async function onMessage(request: SwRequest): Promise<SwAnswer> {
  switch (request.tocsin) {
    case "pending-reads":
      return { ids: await pendingReads() };
    case "reads-done":
      await forgetReads(request.ids);
      return { ok: true };
    default:
      return { ok: false }; // "holds" and "mark-read" are the pages' to answer
  }
}

sw.addEventListener("install", (event: ExtendableEvent) => event.waitUntil(sw.skipWaiting()));
sw.addEventListener("activate", (event: ExtendableEvent) => event.waitUntil(sw.clients.claim()));
sw.addEventListener("push", (event: PushEvent) => event.waitUntil(onPush(event.data?.text() ?? null)));
sw.addEventListener("notificationclick", (event: NotificationEvent) => event.waitUntil(onClick(event.notification)));
sw.addEventListener("message", (event: ExtendableMessageEvent) => {
  const port = event.ports[0];
  if (!port || !isSwRequest(event.data)) return;
  event.waitUntil(onMessage(event.data).then((answer) => port.postMessage(answer)));
});

(self as unknown as { tocsin: unknown }).tocsin = { click: onClick };
