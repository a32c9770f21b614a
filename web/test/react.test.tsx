import { act, cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { TocsinClient, TocsinSnapshot } from "../src/client/tocsin.js";
import { NotificationBell, TocsinProvider, useNotifications } from "../src/react/index.js";
import { note } from "./fixtures.js";

function stubClient() {
  let snap: TocsinSnapshot = {
    notifications: [],
    unreadCount: 0,
    unseenCount: 0,
    status: "connecting",
    hasMore: false,
    loadingMore: false,
    isLeader: true,
    userId: "u1",
  };
  const listeners = new Set<() => void>();
  const client = {
    start: vi.fn(async () => undefined),
    stop: vi.fn(),
    subscribe: (l: () => void) => {
      listeners.add(l);
      return () => {
        listeners.delete(l);
      };
    },
    getSnapshot: () => snap,
    onNotifications: () => () => undefined,
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
  };
}

function Counter() {
  const { unreadCount, status, notifications, markAllAsRead } = useNotifications();
  return (
    <button type="button" onClick={() => void markAllAsRead()}>
      {status}:{unreadCount}:{notifications.length}
    </button>
  );
}

afterEach(cleanup);

describe("React bindings", () => {
  it("useNotifications re-renders on every client change and exposes the actions", () => {
    const stub = stubClient();
    render(
      <TocsinProvider client={stub.client}>
        <Counter />
      </TocsinProvider>,
    );
    expect(stub.spies.start).toHaveBeenCalled();
    expect(screen.getByRole("button").textContent).toBe("connecting:0:0");
    act(() => stub.set({ status: "connected", unreadCount: 2, notifications: [note(2), note(1)] }));
    expect(screen.getByRole("button").textContent).toBe("connected:2:2");
    act(() => screen.getByRole("button").click());
    expect(stub.spies.markAllAsRead).toHaveBeenCalled();
  });

  it("NotificationBell mounts the shared bell and follows the counts", async () => {
    const stub = stubClient();
    render(
      <TocsinProvider client={stub.client}>
        <NotificationBell count="unseen" theme="dark" />
      </TocsinProvider>,
    );
    const bell = screen.getByRole("button", { name: /Notifications/ });
    expect(bell.getAttribute("aria-label")).toBe("Notifications, none unseen");
    await act(async () => stub.set({ unseenCount: 150 }));
    expect(bell.getAttribute("aria-label")).toBe("Notifications, 150 unseen");
    expect(document.querySelector(".tocsin-bell__badge")?.textContent).toBe("99+");
    expect(document.querySelector(".tocsin-bell")?.getAttribute("data-theme")).toBe("dark");
  });

  it("hooks outside the provider fail loudly", () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    expect(() => render(<Counter />)).toThrow(/TocsinProvider/);
  });
});
