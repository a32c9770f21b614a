import { afterEach, describe, expect, it, vi } from "vitest";
import type { TocsinClient, TocsinSnapshot } from "../src/client/tocsin.js";
import { BellView } from "../src/ui/bell.js";
import { ToasterView } from "../src/ui/toaster.js";
import { note } from "./fixtures.js";

function stubClient(snapshot: Partial<TocsinSnapshot>) {
  let snap: TocsinSnapshot = {
    notifications: [],
    unreadCount: 0,
    unseenCount: 0,
    status: "connected",
    hasMore: false,
    loadingMore: false,
    isLeader: true,
    userId: "u1",
    ...snapshot,
  };
  const listeners = new Set<() => void>();
  const notificationListeners = new Set<(list: unknown[], source: string) => void>();
  const client = {
    subscribe: (l: () => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    getSnapshot: () => snap,
    onNotifications: (l: (list: unknown[], source: string) => void) => {
      notificationListeners.add(l);
      return () => notificationListeners.delete(l);
    },
    markAsRead: vi.fn(async () => undefined),
    markAllAsRead: vi.fn(async () => undefined),
    markAllSeen: vi.fn(async () => undefined),
    loadMore: vi.fn(async () => undefined),
  };
  return {
    client: client as unknown as TocsinClient,
    spies: client,
    set(next: Partial<TocsinSnapshot>) {
      snap = { ...snap, ...next };
      for (const l of listeners) l();
    },
    emit(list: unknown[], source: string) {
      for (const l of notificationListeners) l(list, source);
    },
  };
}

const many = (n: number) => Array.from({ length: n }, (_, i) => note(n - i));

afterEach(() => {
  document.body.innerHTML = "";
  vi.useRealTimers();
});

describe("BellView", () => {
  it("is a button whose label carries the count; the badge caps at 99+", () => {
    const { client } = stubClient({ unreadCount: 120, notifications: many(120) });
    new BellView(document.body, client);
    const button = document.querySelector("button.tocsin-bell__button") as HTMLButtonElement;
    expect(button.getAttribute("aria-label")).toBe("Notifications, 120 unread");
    expect(document.querySelector(".tocsin-bell__badge")?.textContent).toBe("99+");
  });

  it("counts unseen when configured", () => {
    const { client } = stubClient({ unreadCount: 5, unseenCount: 2 });
    new BellView(document.body, client, { count: "unseen" });
    expect(document.querySelector(".tocsin-bell__badge")?.textContent).toBe("2");
  });

  it("opens with the newest 20, marks all seen, focuses the first item; Escape returns focus", () => {
    const { client, spies } = stubClient({ unreadCount: 120, notifications: many(120) });
    const bell = new BellView(document.body, client);
    const button = document.querySelector("button.tocsin-bell__button") as HTMLButtonElement;
    button.click();
    expect(bell.isOpen).toBe(true);
    expect(button.getAttribute("aria-expanded")).toBe("true");
    expect(spies.markAllSeen).toHaveBeenCalled();
    const items = document.querySelectorAll(".tocsin-item");
    expect(items.length).toBe(20);
    expect(items[0]?.querySelector(".tocsin-item__title")?.textContent).toBe("Title 120");
    expect(document.activeElement).toBe(items[0]?.querySelector(".tocsin-item__main"));
    document.activeElement?.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(bell.isOpen).toBe(false);
    expect(document.activeElement).toBe(button);
  });

  it("arrow keys move through items; moving past the last reveals more", () => {
    const { client } = stubClient({ notifications: many(30) });
    new BellView(document.body, client, { pageSize: 5 });
    (document.querySelector("button.tocsin-bell__button") as HTMLButtonElement).click();
    for (let i = 0; i < 5; i++) {
      document.activeElement?.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    }
    expect(document.querySelectorAll(".tocsin-item").length).toBe(10);
  });

  it("shows an empty state and keeps items (and focus) across updates", async () => {
    const stub = stubClient({});
    new BellView(document.body, stub.client);
    (document.querySelector("button.tocsin-bell__button") as HTMLButtonElement).click();
    expect((document.querySelector(".tocsin-bell__empty") as HTMLElement).hidden).toBe(false);
    stub.set({ notifications: [note(1)], unreadCount: 1 });
    await Promise.resolve();
    const first = document.querySelector(".tocsin-item");
    expect(first?.classList.contains("tocsin-item--unread")).toBe(true);
    stub.set({ notifications: [note(2), { ...note(1), readAt: "2026-11-24T16:00:00Z" }], unreadCount: 1 });
    await Promise.resolve();
    expect(document.querySelectorAll(".tocsin-item")[1]).toBe(first);
    expect(first?.classList.contains("tocsin-item--unread")).toBe(false);
  });

  it("the read button marks one read; Mark all read marks all", () => {
    const { client, spies } = stubClient({ notifications: [note(1)], unreadCount: 1 });
    new BellView(document.body, client);
    (document.querySelector("button.tocsin-bell__button") as HTMLButtonElement).click();
    (document.querySelector(".tocsin-item__read") as HTMLButtonElement).click();
    expect(spies.markAsRead).toHaveBeenCalledWith("id-1");
    (document.querySelector(".tocsin-bell__mark-all") as HTMLButtonElement).click();
    expect(spies.markAllAsRead).toHaveBeenCalled();
  });

  it("activating an item with an actionUrl marks it read (keepalive) and navigates", () => {
    const navigate = vi.fn();
    const { client, spies } = stubClient({ notifications: [note(1, { actionUrl: "/orders/1" })], unreadCount: 1 });
    new BellView(document.body, client, { navigate });
    (document.querySelector("button.tocsin-bell__button") as HTMLButtonElement).click();
    (document.querySelector(".tocsin-item__main") as HTMLButtonElement).click();
    expect(spies.markAsRead).toHaveBeenCalledWith("id-1", { keepalive: true });
    expect(navigate).toHaveBeenCalledWith("/orders/1");
  });
});

describe("ToasterView", () => {
  it("shows a toast per live notification with its type icon, announced politely, for 5 s", () => {
    vi.useFakeTimers();
    const stub = stubClient({});
    new ToasterView(document.body, stub.client);
    stub.emit([note(1, { type: "order:status_changed" })], "live");
    expect(document.querySelector(".tocsin-toast__icon")?.textContent).toBe("📦");
    expect(document.querySelector('[aria-live="polite"]')?.textContent).toBe("Title 1. Body 1");
    vi.advanceTimersByTime(4_900);
    expect(document.querySelectorAll(".tocsin-toast").length).toBe(1);
    vi.advanceTimersByTime(200);
    expect(document.querySelectorAll(".tocsin-toast").length).toBe(0);
  });

  it("stacks at most `max`, the oldest leaving first", () => {
    const stub = stubClient({});
    new ToasterView(document.body, stub.client, { max: 3 });
    for (let i = 1; i <= 5; i++) stub.emit([note(i)], "live");
    const titles = [...document.querySelectorAll(".tocsin-toast__title")].map((t) => t.textContent);
    expect(titles).toEqual(["Title 3", "Title 4", "Title 5"]);
  });

  it("summarises a backlog batch in one toast with the count", () => {
    const stub = stubClient({});
    new ToasterView(document.body, stub.client);
    stub.emit([note(1), note(2), note(3)], "batch");
    expect(document.querySelectorAll(".tocsin-toast").length).toBe(1);
    expect(document.querySelector(".tocsin-toast__title")?.textContent).toBe("3 new notifications");
  });

  it("clicking a toast navigates to its actionUrl and marks it read", () => {
    const navigate = vi.fn();
    const stub = stubClient({});
    new ToasterView(document.body, stub.client, { navigate });
    stub.emit([note(1, { actionUrl: "/inbox/77" })], "live");
    (document.querySelector(".tocsin-toast__main") as HTMLButtonElement).click();
    expect(stub.spies.markAsRead).toHaveBeenCalledWith("id-1", { keepalive: true });
    expect(navigate).toHaveBeenCalledWith("/inbox/77");
    expect(document.querySelectorAll(".tocsin-toast").length).toBe(0);
  });

  it("uses an unknown type's default icon and skips notifications already read", () => {
    const stub = stubClient({});
    new ToasterView(document.body, stub.client);
    stub.emit([note(1, { type: "invoice:overdue" }), note(2, { readAt: "2026-11-24T16:00:00Z" })], "live");
    expect([...document.querySelectorAll(".tocsin-toast__icon")].map((i) => i.textContent)).toEqual(["🔔"]);
  });
});
