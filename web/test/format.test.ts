import { describe, expect, it } from "vitest";
import { badgeText, bellLabel, iconFor, relativeTime } from "../src/ui/format.js";

describe("format", () => {
  it("caps the badge at 99+", () => {
    expect(badgeText(0)).toBe("0");
    expect(badgeText(99)).toBe("99");
    expect(badgeText(100)).toBe("99+");
    expect(badgeText(120)).toBe("99+");
  });

  it("puts the real count in the accessible label", () => {
    expect(bellLabel(120, "unread")).toBe("Notifications, 120 unread");
    expect(bellLabel(0, "unseen")).toBe("Notifications, none unseen");
  });

  it("has the seed's icon per type and a default", () => {
    expect(iconFor("order:status_changed")).toBe("📦");
    expect(iconFor("message:received")).toBe("💬");
    expect(iconFor("mention:comment")).toBe("@");
    expect(iconFor("task:assigned")).toBe("✅");
    expect(iconFor("payment:processed")).toBe("💳");
    expect(iconFor("system:alert")).toBe("⚠️");
    expect(iconFor("invoice:overdue")).toBe("🔔");
  });

  it("formats relative times", () => {
    const now = Date.parse("2026-11-24T16:00:00Z");
    expect(relativeTime("2026-11-24T15:59:30Z", now)).toBe("just now");
    expect(relativeTime("2026-11-24T15:55:00Z", now)).toBe("5m ago");
    expect(relativeTime("2026-11-24T13:00:00Z", now)).toBe("3h ago");
    expect(relativeTime("2026-11-22T16:00:00Z", now)).toBe("2d ago");
    expect(relativeTime("2026-10-01T16:00:00Z", now)).toMatch(/2026/);
    expect(relativeTime("2026-11-24T16:00:05Z", now)).toBe("just now"); // clock skew
  });
});
