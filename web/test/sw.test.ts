import { describe, expect, it, vi } from "vitest";
import { handleClick, iconUrl, notificationFor, type PageClient, parsePayload, safeUrl, shownInATab } from "../src/sw/logic.js";
import type { SwAnswer, SwRequest } from "../src/sw/protocol.js";

const ORIGIN = "https://app.example";

function page(url: string, reply: (m: SwRequest) => SwAnswer | null, navigate?: () => Promise<unknown>): PageClient & { asked: SwRequest[] } {
  const asked: SwRequest[] = [];
  return {
    url,
    asked,
    ask: async (message) => {
      asked.push(message);
      return reply(message);
    },
    focus: vi.fn(async () => undefined),
    navigate: vi.fn(navigate ?? (async () => undefined)),
  };
}

describe("push payload", () => {
  it("parses the worker's JSON and refuses anything without id and title", () => {
    const text = JSON.stringify({ id: "n1", title: "Hi", body: "there", type: "message:received", actionUrl: "/inbox/7" });
    expect(parsePayload(text)).toEqual({ id: "n1", title: "Hi", body: "there", type: "message:received", actionUrl: "/inbox/7", icon: undefined });
    expect(parsePayload("not json")).toBeNull();
    expect(parsePayload(JSON.stringify({ title: "no id" }))).toBeNull();
    expect(parsePayload(null)).toBeNull();
  });

  it("builds the notification: tag is the id, icon per type, action URL made absolute", () => {
    const shown = notificationFor({ id: "n1", title: "T", body: "B", type: "task:assigned", actionUrl: "/tasks/3" }, ORIGIN);
    expect(shown.title).toBe("T");
    expect(shown.options.tag).toBe("n1");
    expect(shown.options.icon).toBe(`${ORIGIN}/static/icons/task.png`);
    expect(shown.options.data).toEqual({ id: "n1", actionUrl: `${ORIGIN}/tasks/3`, type: "task:assigned" });
    expect(iconUrl("invoice:overdue", ORIGIN)).toBe(`${ORIGIN}/static/icons/bell.png`);
  });

  it("never opens a non-http URL", () => {
    expect(safeUrl("javascript:alert(1)", ORIGIN)).toBe(`${ORIGIN}/`);
    expect(safeUrl("https://other.example/x", ORIGIN)).toBe("https://other.example/x");
    expect(safeUrl(null, ORIGIN)).toBe(`${ORIGIN}/`);
  });
});

describe("a tab that showed it", () => {
  it("skips the push when any tab holds the id", async () => {
    const holds = page(`${ORIGIN}/a`, (m) => ({ ok: m.tocsin === "holds" && m.id === "n1" }));
    const silent = page(`${ORIGIN}/b`, () => null); // no Tocsin client in it: timed out
    expect(await shownInATab([silent, holds], "n1")).toBe(true);
    expect(await shownInATab([silent, holds], "n2")).toBe(false);
    expect(await shownInATab([], "n1")).toBe(false);
  });
});

describe("notification click", () => {
  it("opens the action URL and has an open tab mark it read", async () => {
    const tab = page(`${ORIGIN}/home`, (m) => ({ ok: m.tocsin === "mark-read" }));
    const env = { origin: ORIGIN, pages: async () => [tab], openWindow: vi.fn(async () => ({})), rememberRead: vi.fn(async () => undefined) };
    expect(await handleClick(env, { id: "n1", actionUrl: `${ORIGIN}/inbox/7` })).toBe("page");
    expect(env.openWindow).toHaveBeenCalledWith(`${ORIGIN}/inbox/7`);
    expect(tab.asked).toEqual([{ tocsin: "mark-read", id: "n1" }]);
    expect(env.rememberRead).not.toHaveBeenCalled();
    expect(tab.navigate).not.toHaveBeenCalled();
  });

  it("focuses a tab already at the URL instead of opening another", async () => {
    const tab = page(`${ORIGIN}/inbox/7`, () => ({ ok: true }));
    const env = { origin: ORIGIN, pages: async () => [tab], openWindow: vi.fn(async () => ({})), rememberRead: vi.fn(async () => undefined) };
    await handleClick(env, { id: "n1", actionUrl: "/inbox/7" });
    expect(tab.focus).toHaveBeenCalled();
    expect(env.openWindow).not.toHaveBeenCalled();
  });

  it("with no tab able to mark it, remembers the id; a refused window sends a tab there", async () => {
    const tab = page(`${ORIGIN}/healthz`, () => null);
    const env = {
      origin: ORIGIN,
      pages: async () => [tab],
      openWindow: vi.fn(async () => Promise.reject(new Error("Not allowed to open a window."))),
      rememberRead: vi.fn(async () => undefined),
    };
    expect(await handleClick(env, { id: "n9", actionUrl: "/inbox/9" })).toBe("remembered");
    expect(env.rememberRead).toHaveBeenCalledWith("n9");
    expect(tab.navigate).toHaveBeenCalledWith(`${ORIGIN}/inbox/9`);
  });
});
