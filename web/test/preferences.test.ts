import { afterEach, describe, expect, it, vi } from "vitest";
import { type ChannelDefaults, FieldError, type Preferences, normalizePreferences } from "../src/client/preferences.js";
import { PreferencesView, type PreferencesHost } from "../src/ui/preferences.js";
import { effective, rowTypes, timeZones, withQuietHours, withRule } from "../src/ui/preferences-model.js";

const DEFAULTS: ChannelDefaults = {
  types: {
    "message:received": ["push", "email"],
    "order:status_changed": ["push"],
    "system:alert": [],
  },
  custom: [],
};

function prefs(value: Partial<Preferences> = {}): Preferences {
  return normalizePreferences(value);
}

describe("preferences model", () => {
  it("a type's own rule beats the channel's star, which beats the default", () => {
    const p = prefs({ channels: { push: { "*": false, "message:received": true }, email: {} } });
    expect(effective(p, DEFAULTS, "push", "message:received")).toBe(true);
    expect(effective(p, DEFAULTS, "push", "order:status_changed")).toBe(false);
    expect(effective(p, DEFAULTS, "email", "message:received")).toBe(true);
    expect(effective(p, DEFAULTS, "email", "order:status_changed")).toBe(false);
    expect(effective(p, DEFAULTS, "email", "invoice:overdue")).toBe(false); // custom default
    expect(effective(prefs(), null, "push", "message:received")).toBe(false); // defaults unknown
  });

  it("rows are the default types then the user's own", () => {
    const p = prefs({ channels: { push: { "*": true }, email: { "invoice:overdue": true } } });
    expect(rowTypes(p, DEFAULTS)).toEqual(["message:received", "order:status_changed", "system:alert", "invoice:overdue"]);
  });

  it("changes are copies and leave the other channel alone", () => {
    const p = prefs({ channels: { push: {}, email: { "*": false } } });
    const next = withRule(p, "push", "system:alert", true);
    expect(next.channels).toEqual({ push: { "system:alert": true }, email: { "*": false } });
    expect(p.channels.push).toEqual({});
    const quiet = withQuietHours(next, { start: "22:00", end: "07:00", timeZone: "Europe/Paris" });
    expect(quiet.quietHours).toEqual({ start: "22:00", end: "07:00", timeZone: "Europe/Paris" });
    expect(withQuietHours(quiet, null).quietHours).toBeNull();
  });

  it("the time zone list holds the current zone and UTC", () => {
    const zones = timeZones("Mars/Olympus_Mons");
    expect(zones).toContain("Mars/Olympus_Mons");
    expect(zones).toContain("UTC");
    expect([...zones].sort()).toEqual(zones);
  });
});

function host(initial: Preferences, put?: (p: Preferences) => Promise<Preferences>) {
  const api = {
    get: vi.fn(async () => initial),
    defaults: vi.fn(async () => DEFAULTS),
    put: vi.fn(put ?? (async (p: Preferences) => p)),
  };
  return { host: { preferences: api } as PreferencesHost, api };
}

async function mounted(initial: Preferences, put?: (p: Preferences) => Promise<Preferences>) {
  const { host: h, api } = host(initial, put);
  const view = new PreferencesView(h);
  document.body.append(view.element);
  await view.load();
  return { view, api, el: view.element };
}

function toggle(el: HTMLElement, channel: string, type: string): HTMLInputElement {
  const input = el.querySelector<HTMLInputElement>(`input[data-channel="${channel}"][data-type="${type}"]`);
  if (!input) throw new Error(`no toggle ${channel} ${type}`);
  return input;
}

describe("PreferencesView", () => {
  afterEach(() => {
    document.body.innerHTML = "";
  });

  it("shows each type's effective setting, with labels naming channel and type", async () => {
    const { el } = await mounted(prefs({ channels: { push: {}, email: { "message:received": false } } }));
    expect(toggle(el, "push", "message:received").checked).toBe(true);
    expect(toggle(el, "email", "message:received").checked).toBe(false);
    expect(toggle(el, "push", "system:alert").checked).toBe(false);
    expect(toggle(el, "email", "message:received").getAttribute("aria-label")).toBe("Email: Messages");
    expect(el.querySelectorAll("th[scope=col]")).toHaveLength(3);
  });

  it("saves only what the user changed, and quiet hours from the form", async () => {
    const { view, api, el } = await mounted(prefs());
    const input = toggle(el, "push", "system:alert");
    input.click();
    const quiet = el.querySelector<HTMLInputElement>(".tocsin-prefs__quiet-on");
    expect(el.querySelector<HTMLElement>(".tocsin-prefs__times")?.hidden).toBe(true);
    quiet?.click();
    expect(el.querySelector<HTMLElement>(".tocsin-prefs__times")?.hidden).toBe(false);
    const zone = el.querySelector<HTMLSelectElement>('[data-field="quietHours.timeZone"]');
    if (zone) {
      zone.value = "Asia/Tokyo";
      zone.dispatchEvent(new Event("change"));
    }
    expect(await view.save()).toBe(true);
    expect(api.put).toHaveBeenCalledTimes(1);
    const sent = api.put.mock.calls[0]?.[0];
    expect(sent?.channels).toEqual({ push: { "system:alert": true }, email: {} });
    expect(sent?.quietHours).toEqual({ start: "22:00", end: "07:00", timeZone: "Asia/Tokyo" });
    expect(el.querySelector('[role="status"]')?.textContent).toBe("Saved");
  });

  it("a refused save says why and marks the field named by the server", async () => {
    const refuse = async (): Promise<Preferences> => {
      throw new FieldError(422, "validation_error", "quietHours.timeZone: unknown time zone 'X'", "quietHours.timeZone");
    };
    const { view, el } = await mounted(prefs({ quietHours: { start: "22:00", end: "07:00", timeZone: "UTC" } }), refuse);
    expect(await view.save()).toBe(false);
    const status = el.querySelector('[role="status"]');
    expect(status?.textContent).toContain("Not saved: quietHours.timeZone: unknown time zone");
    const zone = el.querySelector('[data-field="quietHours.timeZone"]');
    expect(zone?.getAttribute("aria-invalid")).toBe("true");
    expect(zone?.getAttribute("aria-describedby")).toBe(status?.id);
    expect(document.activeElement).toBe(zone);
  });

  it("a refused toggle is marked too", async () => {
    const refuse = async (): Promise<Preferences> => {
      throw new FieldError(422, "validation_error", "channels.email.message:received: must be true or false", "channels.email.message:received");
    };
    const { view, el } = await mounted(prefs(), refuse);
    await view.save();
    expect(toggle(el, "email", "message:received").getAttribute("aria-invalid")).toBe("true");
  });

  it("a failed load is shown instead of the table", async () => {
    const api = { get: vi.fn(async () => Promise.reject(new Error("offline"))), defaults: vi.fn(async () => DEFAULTS), put: vi.fn() };
    const view = new PreferencesView({ preferences: api } as unknown as PreferencesHost);
    await view.load();
    expect(view.element.querySelector('[role="alert"]')?.textContent).toBe("Could not load preferences: offline");
    expect(await view.save()).toBe(false);
    expect(api.put).not.toHaveBeenCalled();
  });

  it("offers push for this browser when the host can, and switches it", async () => {
    let state: "on" | "off" = "off";
    const { host: h } = host(prefs());
    const full: PreferencesHost = {
      ...h,
      pushState: vi.fn(async () => state),
      enablePush: vi.fn(async () => {
        state = "on";
      }),
      disablePush: vi.fn(async () => {
        state = "off";
        return true;
      }),
    };
    const view = new PreferencesView(full);
    await view.load();
    await vi.waitFor(() => expect(view.element.querySelector(".tocsin-prefs__push-text")?.textContent).toBe("Push is off for this browser"));
    view.element.querySelector<HTMLButtonElement>(".tocsin-prefs__push-button")?.click();
    await vi.waitFor(() => expect(view.element.querySelector(".tocsin-prefs__push-text")?.textContent).toBe("Push is on for this browser"));
    expect(full.enablePush).toHaveBeenCalledTimes(1);
  });
});
