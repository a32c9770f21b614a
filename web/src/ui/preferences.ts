/**
 * The preferences panel inside the bell: a channel × type table of toggles, optional quiet
 * hours with a time zone, "push on this browser", Save (PUT /v1/preferences) and its errors.
 * The bell mounts it, so React, <tocsin-bell> and the demo share it.
 */
import type { ChannelDefaults, Preferences, PreferencesApi } from "../client/preferences.js";
import { CHANNELS, FieldError, normalizePreferences } from "../client/preferences.js";
import type { PushState } from "../client/push.js";
import { h, setText } from "./dom.js";
import { iconFor } from "./format.js";
import {
  CHANNEL_LABELS,
  DEFAULT_QUIET_HOURS,
  browserTimeZone,
  effective,
  rowTypes,
  timeZones,
  typeLabel,
  withQuietHours,
  withRule,
} from "./preferences-model.js";

/** What the panel needs from a TocsinClient. */
export interface PreferencesHost {
  readonly preferences: Pick<PreferencesApi, "get" | "put" | "defaults">;
  enablePush?(): Promise<unknown>;
  disablePush?(): Promise<boolean>;
  pushState?(): Promise<PushState>;
}

let nextId = 0;

export class PreferencesView {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly saveButton: HTMLButtonElement;
  private readonly pushRow: HTMLElement;
  private readonly id = `tocsin-prefs-${++nextId}`;
  private prefs: Preferences = normalizePreferences(null);
  private defaults: ChannelDefaults | null = null;
  private loaded = false;
  private busy = false;

  constructor(private readonly host: PreferencesHost) {
    this.statusEl = h("p", { class: "tocsin-prefs__status", role: "status", "aria-live": "polite" });
    this.saveButton = h("button", { type: "button", class: "tocsin-prefs__save" }, "Save");
    this.pushRow = h("div", { class: "tocsin-prefs__push", hidden: true });
    this.body = h("div", { class: "tocsin-prefs__body" }, h("p", { class: "tocsin-prefs__loading" }, "Loading…"));
    this.element = h(
      "form",
      { class: "tocsin-prefs", "aria-label": "Notification preferences", novalidate: true },
      this.body,
      this.pushRow,
      h("div", { class: "tocsin-prefs__actions" }, this.statusEl, this.saveButton),
    );
    this.element.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.save();
    });
    this.saveButton.addEventListener("click", () => void this.save());
  }

  /** Fetches the user's preferences (and the type defaults) and renders them. */
  async load(): Promise<void> {
    this.showStatus("");
    try {
      const [prefs, defaults] = await Promise.all([
        this.host.preferences.get(),
        this.host.preferences.defaults().catch(() => null),
      ]);
      this.prefs = normalizePreferences(prefs);
      this.defaults = defaults;
      this.loaded = true;
      this.render();
    } catch (error) {
      this.body.replaceChildren(h("p", { class: "tocsin-prefs__error", role: "alert" }, `Could not load preferences: ${message(error)}`));
    }
    void this.renderPush();
  }

  get value(): Preferences {
    return normalizePreferences(this.prefs);
  }

  async save(): Promise<boolean> {
    if (!this.loaded || this.busy) return false;
    this.busy = true;
    this.saveButton.setAttribute("aria-disabled", "true");
    this.clearInvalid();
    this.showStatus("Saving…");
    try {
      this.prefs = normalizePreferences(await this.host.preferences.put(this.readForm()));
      this.render();
      this.showStatus("Saved");
      return true;
    } catch (error) {
      this.markInvalid(error instanceof FieldError ? error.field : null);
      this.showStatus(`Not saved: ${message(error)}`, true);
      return false;
    } finally {
      this.busy = false;
      this.saveButton.removeAttribute("aria-disabled");
    }
  }

  // ---- rendering -----------------------------------------------------------------------

  private render(): void {
    this.body.replaceChildren(this.table(), this.quietHours());
  }

  private table(): HTMLElement {
    const head = h("tr", {}, h("th", { scope: "col" }, "Type"), ...CHANNELS.map((c) => h("th", { scope: "col" }, CHANNEL_LABELS[c])));
    const rows = rowTypes(this.prefs, this.defaults).map((type) => {
      const label = typeLabel(type);
      const cells = CHANNELS.map((channel) =>
        h(
          "td",
          {},
          h("input", {
            type: "checkbox",
            class: "tocsin-prefs__toggle",
            "data-channel": channel,
            "data-type": type,
            "aria-label": `${CHANNEL_LABELS[channel]}: ${label}`,
            checked: effective(this.prefs, this.defaults, channel, type),
          }),
        ),
      );
      return h(
        "tr",
        {},
        h("th", { scope: "row" }, h("span", { class: "tocsin-prefs__icon", "aria-hidden": "true" }, iconFor(type)), label),
        ...cells,
      );
    });
    const table = h(
      "table",
      { class: "tocsin-prefs__table" },
      h("caption", {}, "Where notifications reach you when you are away. In-app is always on."),
      h("thead", {}, head),
      h("tbody", {}, ...rows),
    );
    table.addEventListener("change", (event) => {
      const input = event.target as HTMLInputElement;
      const { channel, type } = input.dataset;
      if ((channel === "push" || channel === "email") && type) {
        this.prefs = withRule(this.prefs, channel, type, input.checked);
        this.showStatus("");
      }
    });
    return table;
  }

  private quietHours(): HTMLElement {
    const quiet = this.prefs.quietHours;
    const zone = quiet?.timeZone ?? browserTimeZone();
    const enabled = h("input", { type: "checkbox", id: `${this.id}-quiet`, class: "tocsin-prefs__quiet-on", checked: quiet !== null });
    const start = h("input", { type: "time", id: `${this.id}-start`, "data-field": "quietHours.start", value: quiet?.start ?? DEFAULT_QUIET_HOURS.start, required: true });
    const end = h("input", { type: "time", id: `${this.id}-end`, "data-field": "quietHours.end", value: quiet?.end ?? DEFAULT_QUIET_HOURS.end, required: true });
    const select = h(
      "select",
      { id: `${this.id}-zone`, "data-field": "quietHours.timeZone" },
      ...timeZones(zone).map((z) => h("option", { value: z, selected: z === zone }, z.replace(/_/g, " "))),
    );
    const times = h(
      "div",
      { class: "tocsin-prefs__times", hidden: quiet === null },
      h("label", { for: start.id }, "From"),
      start,
      h("label", { for: end.id }, "To"),
      end,
      h("label", { for: select.id }, "Time zone"),
      select,
    );
    enabled.addEventListener("change", () => {
      times.hidden = !enabled.checked;
      this.prefs = withQuietHours(this.prefs, this.quietFromForm());
    });
    for (const input of [start, end, select]) {
      input.addEventListener("change", () => {
        this.prefs = withQuietHours(this.prefs, this.quietFromForm());
      });
    }
    return h(
      "fieldset",
      { class: "tocsin-prefs__quiet" },
      h("legend", {}, "Quiet hours"),
      h("div", { class: "tocsin-prefs__quiet-toggle" }, enabled, h("label", { for: enabled.id }, "Hold push and email during quiet hours")),
      times,
    );
  }

  private quietFromForm(): Preferences["quietHours"] {
    const on = this.element.querySelector<HTMLInputElement>(".tocsin-prefs__quiet-on")?.checked;
    if (!on) return null;
    const value = (field: string): string => this.element.querySelector<HTMLInputElement | HTMLSelectElement>(`[data-field="${field}"]`)?.value ?? "";
    return { start: value("quietHours.start"), end: value("quietHours.end"), timeZone: value("quietHours.timeZone") };
  }

  private readForm(): Preferences {
    return withQuietHours(this.prefs, this.quietFromForm());
  }

  private async renderPush(): Promise<void> {
    const { enablePush, disablePush, pushState } = this.host;
    if (!enablePush || !disablePush || !pushState) return;
    const state = await pushState.call(this.host).catch((): PushState => "unsupported");
    if (state === "unsupported") return;
    const text = h("span", { class: "tocsin-prefs__push-text" });
    const button = h("button", { type: "button", class: "tocsin-prefs__push-button" });
    const show = (current: PushState): void => {
      setText(text, current === "on" ? "Push is on for this browser" : current === "denied" ? "Notifications are blocked for this site in the browser settings" : "Push is off for this browser");
      setText(button, current === "on" ? "Turn off" : "Turn on");
      button.hidden = current === "denied";
    };
    show(state);
    button.addEventListener("click", async () => {
      const current = await pushState.call(this.host).catch((): PushState => "off");
      try {
        if (current === "on") await disablePush.call(this.host);
        else await enablePush.call(this.host);
        show(await pushState.call(this.host));
      } catch (error) {
        this.showStatus(`Push: ${message(error)}`, true);
      }
    });
    this.pushRow.replaceChildren(text, button);
    this.pushRow.hidden = false;
  }

  // ---- errors --------------------------------------------------------------------------

  private showStatus(text: string, error = false): void {
    setText(this.statusEl, text);
    this.statusEl.classList.toggle("tocsin-prefs__status--error", error);
  }

  private markInvalid(field: string | null): void {
    if (!field) return;
    const match = field.match(/^channels\.(push|email)\.(.+)$/);
    const el = match
      ? this.element.querySelector<HTMLElement>(`input[data-channel="${match[1]}"][data-type="${CSS.escape(match[2] ?? "")}"]`)
      : this.element.querySelector<HTMLElement>(`[data-field="${CSS.escape(field)}"]`);
    if (!el) return;
    el.setAttribute("aria-invalid", "true");
    el.setAttribute("aria-describedby", this.statusId());
    el.focus();
  }

  private clearInvalid(): void {
    for (const el of this.element.querySelectorAll("[aria-invalid]")) {
      el.removeAttribute("aria-invalid");
      el.removeAttribute("aria-describedby");
    }
  }

  private statusId(): string {
    if (!this.statusEl.id) this.statusEl.id = `${this.id}-status`;
    return this.statusEl.id;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
