/**
 * The bell as a DOM view over a TocsinClient. Both <NotificationBell> (React) and <tocsin-bell>
 * mount this same view, so behaviour, markup and accessibility are written once.
 */
import type { TocsinClient, TocsinSnapshot } from "../client/tocsin.js";
import type { Notification } from "../client/types.js";
import { BACK_SVG, BELL_SVG, GEAR_SVG, h, setText, toggleAttr } from "./dom.js";
import { attachServiceWorker } from "../client/push.js";
import { badgeText, bellLabel, type CountMode, iconFor, relativeTime } from "./format.js";
import { PreferencesView } from "./preferences.js";

export interface BellOptions {
  /** What the badge counts (default "unread"). */
  count?: CountMode;
  /** Items shown per step of the infinite scroll (default 20). */
  pageSize?: number;
  /** Called with `actionUrl` when an item is activated; default `location.assign`. */
  navigate?: (url: string) => void;
  /** "light", "dark", or undefined to follow prefers-color-scheme. */
  theme?: "light" | "dark";
  /** A gear in the header opens the user's channel preferences (default true). */
  preferences?: boolean;
}

let nextId = 0;
/** Distance from the bottom of the list at which the next page is revealed. */
const SCROLL_SLACK_PX = 48;

export class BellView {
  private readonly root: HTMLElement;
  private readonly button: HTMLButtonElement;
  private readonly badge: HTMLElement;
  private readonly panel: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly empty: HTMLElement;
  private readonly footer: HTMLElement;
  private readonly markAll: HTMLButtonElement;
  private readonly statusEl: HTMLElement;
  private readonly title: HTMLElement;
  private readonly gear: HTMLButtonElement | null = null;
  private prefs: PreferencesView | null = null;
  private prefsOpen = false;
  private readonly items = new Map<string, HTMLLIElement>();
  private readonly unsubscribe: () => void;
  private readonly cleanups: Array<() => void> = [];
  private open = false;
  private visible: number;
  private renderQueued = false;
  private fillFailed = false;
  private clock: ReturnType<typeof setInterval> | undefined;

  constructor(
    host: HTMLElement,
    private readonly client: TocsinClient,
    private readonly options: BellOptions = {},
  ) {
    this.visible = options.pageSize ?? 20;
    const id = `tocsin-bell-${++nextId}`;
    this.badge = h("span", { class: "tocsin-bell__badge", "aria-hidden": "true", hidden: true });
    this.button = h("button", {
      type: "button",
      class: "tocsin-bell__button",
      "aria-haspopup": "dialog",
      "aria-expanded": "false",
      "aria-controls": `${id}-panel`,
    });
    this.button.innerHTML = BELL_SVG;
    this.button.append(this.badge);

    this.statusEl = h("span", { class: "tocsin-bell__status", role: "status" });
    this.markAll = h("button", { type: "button", class: "tocsin-bell__mark-all" }, "Mark all read");
    this.list = h("ul", { class: "tocsin-bell__list", "aria-labelledby": `${id}-title` });
    this.empty = h(
      "div",
      { class: "tocsin-bell__empty", hidden: true },
      h("span", { class: "tocsin-bell__empty-icon", "aria-hidden": "true" }, "🔕"),
      h("span", {}, "You're all caught up"),
    );
    this.footer = h("div", { class: "tocsin-bell__footer", "aria-live": "polite" });
    this.panel = h(
      "div",
      { class: "tocsin-bell__panel", id: `${id}-panel`, role: "dialog", "aria-labelledby": `${id}-title`, tabindex: "-1", hidden: true },
      h(
        "div",
        { class: "tocsin-bell__header" },
        (this.title = h("h2", { class: "tocsin-bell__title", id: `${id}-title` }, "Notifications")),
        this.statusEl,
        // Before "Mark all read", which stays next to the list in the tab order.
        ...(options.preferences === false ? [] : [(this.gear = gearButton())]),
        this.markAll,
      ),
      this.list,
      this.empty,
      this.footer,
    );
    this.root = h("div", { class: "tocsin tocsin-bell", "data-theme": options.theme }, this.button, this.panel);
    host.append(this.root);

    this.on(this.button, "click", () => this.setOpen(!this.open));
    this.on(this.markAll, "click", () => {
      if (this.client.getSnapshot().unreadCount > 0) void this.client.markAllAsRead().catch(() => undefined);
    });
    if (this.gear) this.on(this.gear, "click", () => this.showPreferences(!this.prefsOpen));
    attachServiceWorker(client);
    this.on(this.list, "scroll", () => this.maybeShowMore());
    this.on(this.list, "click", (event) => this.onItemClick(event as MouseEvent));
    this.on(this.root, "keydown", (event) => this.onKeyDown(event as KeyboardEvent));
    this.on(this.root, "focusout", (event) => {
      const next = (event as FocusEvent).relatedTarget as Node | null;
      if (this.open && next && !this.root.contains(next)) this.setOpen(false, false);
    });
    const outside = (event: Event): void => {
      if (this.open && !event.composedPath().includes(this.root)) this.setOpen(false, false);
    };
    this.on(document, "pointerdown", outside);
    // Escape still closes when focus fell out of the bell (e.g. to <body> after a re-render).
    this.on(document, "keydown", (event) => {
      const key = event as KeyboardEvent;
      if (this.open && key.key === "Escape" && !key.composedPath().includes(this.root)) this.setOpen(false);
    });

    this.unsubscribe = client.subscribe(() => this.queueRender());
    this.render();
  }

  destroy(): void {
    this.unsubscribe();
    clearInterval(this.clock);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.root.remove();
  }

  setTheme(theme: "light" | "dark" | undefined): void {
    toggleAttr(this.root, "data-theme", theme !== undefined, theme);
  }

  setOpen(open: boolean, restoreFocus = true): void {
    if (open === this.open) return;
    this.open = open;
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
    clearInterval(this.clock);
    if (!open) this.showPreferences(false, false);
    if (open) {
      this.visible = this.options.pageSize ?? 20;
      void this.client.markAllSeen().catch(() => undefined);
      this.clock = setInterval(() => this.render(), 30_000);
      this.render();
      this.list.scrollTop = 0;
      const first = this.list.querySelector<HTMLElement>(".tocsin-item__main");
      (first ?? this.panel).focus();
    } else if (restoreFocus) {
      this.button.focus();
    }
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Swaps the list for the preferences panel (loading them afresh each time) and back. */
  showPreferences(show: boolean, moveFocus = true): void {
    if (show === this.prefsOpen || !this.gear) return;
    this.prefsOpen = show;
    this.root.classList.toggle("tocsin-bell--prefs", show);
    this.gear.setAttribute("aria-expanded", String(show));
    this.gear.setAttribute("aria-label", show ? "Back to notifications" : "Notification preferences");
    this.gear.title = show ? "Back to notifications" : "Preferences";
    this.gear.innerHTML = show ? BACK_SVG : GEAR_SVG;
    setText(this.title, show ? "Preferences" : "Notifications");
    for (const el of [this.list, this.empty, this.footer, this.markAll, this.statusEl]) el.classList.toggle("tocsin-bell--away", show);
    if (show) {
      this.prefs ??= new PreferencesView(this.client);
      this.prefs.element.id = `${this.gear.getAttribute("aria-controls")}`;
      this.panel.append(this.prefs.element);
      void this.prefs.load().then(() => {
        if (moveFocus && this.prefsOpen) this.prefs?.element.querySelector<HTMLElement>("input, select, button")?.focus();
      });
    } else {
      this.prefs?.element.remove();
      if (moveFocus) this.gear.focus();
    }
  }

  // ---- rendering -----------------------------------------------------------------------

  private queueRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  private render(): void {
    const snap = this.client.getSnapshot();
    const mode = this.options.count ?? "unread";
    const count = mode === "unseen" ? snap.unseenCount : snap.unreadCount;
    setText(this.badge, badgeText(count));
    this.badge.hidden = count === 0;
    this.button.setAttribute("aria-label", bellLabel(count, mode));
    this.root.dataset["status"] = snap.status;
    setText(this.statusEl, statusText(snap));
    // aria-disabled, not disabled: a disabled button drops keyboard focus to <body>.
    this.markAll.setAttribute("aria-disabled", String(snap.unreadCount === 0));
    if (this.open) {
      this.renderList(snap);
      this.fill(snap);
    }
  }

  private renderList(snap: TocsinSnapshot): void {
    const shown = snap.notifications.slice(0, this.visible);
    const now = Date.now();
    const keep = new Set<string>();
    let cursor: ChildNode | null = this.list.firstChild;
    for (const n of shown) {
      keep.add(n.id);
      const li = this.itemFor(n);
      updateItem(li, n, now);
      // Move only when out of place, so a focused item keeps focus across renders.
      if (li !== cursor) this.list.insertBefore(li, cursor);
      else cursor = cursor.nextSibling;
    }
    for (const [id, li] of this.items) {
      if (!keep.has(id)) {
        li.remove();
        this.items.delete(id);
      }
    }
    this.empty.hidden = shown.length > 0 || snap.loadingMore;
    this.list.hidden = shown.length === 0;
    const more = snap.notifications.length > this.visible || snap.hasMore;
    setText(this.footer, snap.loadingMore ? "Loading…" : shown.length > 0 && !more ? "No older notifications" : "");
  }

  private itemFor(n: Notification): HTMLLIElement {
    let li = this.items.get(n.id);
    if (!li) {
      li = h(
        "li",
        { class: "tocsin-item", "data-id": n.id, "data-type": n.type },
        h(
          "button",
          { type: "button", class: "tocsin-item__main" },
          h("span", { class: "tocsin-item__icon", "aria-hidden": "true" }, iconFor(n.type)),
          h(
            "span",
            { class: "tocsin-item__text" },
            h("span", { class: "tocsin-visually-hidden tocsin-item__state" }),
            h("span", { class: "tocsin-item__title" }, n.title),
            h("span", { class: "tocsin-item__body" }, n.body),
            h("time", { class: "tocsin-item__time", datetime: n.createdAt, title: new Date(n.createdAt).toLocaleString() }),
          ),
          h("span", { class: "tocsin-item__dot", "aria-hidden": "true" }),
        ),
        h("button", { type: "button", class: "tocsin-item__read", "aria-label": `Mark as read: ${n.title}`, title: "Mark as read" }, "✓"),
      );
      this.items.set(n.id, li);
    }
    return li;
  }

  // ---- interaction ---------------------------------------------------------------------

  private maybeShowMore(): void {
    const { scrollTop, clientHeight, scrollHeight } = this.list;
    if (scrollTop + clientHeight >= scrollHeight - SCROLL_SLACK_PX) this.showMore();
  }

  private showMore(): void {
    const snap = this.client.getSnapshot();
    // Reveal one more step; when that reaches past what is held, fetch the next feed page and
    // it appears in the revealed room as it arrives.
    if (this.visible <= snap.notifications.length) {
      this.visible += this.options.pageSize ?? 20;
      this.render();
    }
    this.fillFailed = false;
    this.fill(this.client.getSnapshot());
  }

  /**
   * Fetches feed pages until the revealed room is filled or the feed ends. A page can bring only
   * notifications already held (the live backlog got there first); without this the list would
   * not grow, no scroll event would follow, and older pages would stay out of reach.
   */
  private fill(snap: TocsinSnapshot): void {
    if (!this.open || this.fillFailed || snap.loadingMore || !snap.hasMore) return;
    if (this.visible <= snap.notifications.length) return;
    this.client.loadMore().catch(() => {
      this.fillFailed = true; // wait for the next scroll rather than retrying in a loop
    });
  }

  private onItemClick(event: MouseEvent): void {
    const target = event.target as Element;
    const li = target.closest<HTMLLIElement>(".tocsin-item");
    const id = li?.dataset["id"];
    if (!li || !id) return;
    const n = this.client.getSnapshot().notifications.find((item) => item.id === id);
    if (!n) return;
    if (target.closest(".tocsin-item__read")) {
      // Keep keyboard focus inside the list once the read button disappears.
      li.querySelector<HTMLElement>(".tocsin-item__main")?.focus();
      void this.client.markAsRead(id).catch(() => undefined);
      return;
    }
    if (n.actionUrl) {
      const url = n.actionUrl;
      const done = n.readAt ? Promise.resolve() : this.client.markAsRead(id, { keepalive: true });
      this.setOpen(false);
      void done.catch(() => undefined);
      (this.options.navigate ?? defaultNavigate)(url);
    } else if (!n.readAt) {
      void this.client.markAsRead(id).catch(() => undefined);
    }
  }

  private onKeyDown(event: KeyboardEvent): void {
    if (!this.open) return;
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.setOpen(false);
      return;
    }
    // The preferences' own controls (select, time inputs) keep their arrow keys.
    if (this.prefsOpen || !["ArrowDown", "ArrowUp", "Home", "End"].includes(event.key)) return;
    const mains = [...this.list.querySelectorAll<HTMLElement>(".tocsin-item__main")];
    if (mains.length === 0) return;
    const active = (this.root.getRootNode() as Document | ShadowRoot).activeElement;
    const current = mains.findIndex((el) => el === active || el.parentElement?.contains(active ?? null));
    let next = current;
    if (event.key === "ArrowDown") next = current + 1;
    else if (event.key === "ArrowUp") next = current - 1;
    else if (event.key === "Home") next = 0;
    else next = mains.length - 1;
    event.preventDefault();
    if (next >= mains.length) {
      this.showMore();
      next = mains.length - 1;
    }
    mains[Math.max(0, next)]?.focus();
  }

  private on(target: EventTarget, type: string, handler: (event: Event) => void): void {
    target.addEventListener(type, handler);
    this.cleanups.push(() => target.removeEventListener(type, handler));
  }
}

function updateItem(li: HTMLLIElement, n: Notification, now: number): void {
  const unread = !n.readAt;
  li.classList.toggle("tocsin-item--unread", unread);
  const readButton = li.querySelector<HTMLButtonElement>(".tocsin-item__read");
  if (readButton) readButton.hidden = !unread;
  const state = li.querySelector(".tocsin-item__state");
  if (state) setText(state, unread ? "Unread: " : "");
  const time = li.querySelector(".tocsin-item__time");
  if (time) setText(time, relativeTime(n.createdAt, now));
}

function statusText(snap: TocsinSnapshot): string {
  switch (snap.status) {
    case "connected":
    case "idle":
      return "";
    case "offline":
      return "Offline";
    case "unauthorized":
      return "Signed out";
    case "connecting":
      return "Connecting…";
    default:
      return "Reconnecting…";
  }
}

let nextGear = 0;

function gearButton(): HTMLButtonElement {
  const button = h("button", {
    type: "button",
    class: "tocsin-bell__gear",
    "aria-label": "Notification preferences",
    "aria-expanded": "false",
    "aria-controls": `tocsin-prefs-panel-${++nextGear}`,
    title: "Preferences",
  });
  button.innerHTML = GEAR_SVG;
  return button;
}

function defaultNavigate(url: string): void {
  window.location.assign(url);
}
