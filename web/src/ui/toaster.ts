/**
 * Toasts for new notifications, as a DOM view over a TocsinClient (shared by <Toaster> and
 * <tocsin-bell>). Announcements go through live regions that exist before any toast appears,
 * which screen readers need in order to notice the change.
 */
import type { NotificationSource, TocsinClient } from "../client/tocsin.js";
import type { Notification } from "../client/types.js";
import { h } from "./dom.js";
import { announcement, iconFor } from "./format.js";

export interface ToasterOptions {
  /** How long a toast stays, in ms (default 5000); hovering or focusing it pauses the timer. */
  durationMs?: number;
  /** Most toasts on screen at once; the oldest leaves first (default 3). */
  max?: number;
  navigate?: (url: string) => void;
  theme?: "light" | "dark";
}

interface Toast {
  el: HTMLLIElement;
  timer: ReturnType<typeof setTimeout> | undefined;
  remaining: number;
  startedAt: number;
}

export class ToasterView {
  private readonly root: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly polite: HTMLElement;
  private readonly assertive: HTMLElement;
  private readonly toasts: Toast[] = [];
  private readonly unsubscribe: () => void;

  constructor(
    host: HTMLElement,
    private readonly client: TocsinClient,
    private readonly options: ToasterOptions = {},
  ) {
    this.list = h("ol", { class: "tocsin-toaster__list" });
    this.polite = h("div", { class: "tocsin-visually-hidden", role: "status", "aria-live": "polite" });
    this.assertive = h("div", { class: "tocsin-visually-hidden", role: "alert", "aria-live": "assertive" });
    this.root = h(
      "section",
      { class: "tocsin tocsin-toaster", "aria-label": "New notifications", "data-theme": options.theme },
      this.list,
      this.polite,
      this.assertive,
    );
    host.append(this.root);
    this.unsubscribe = client.onNotifications((list, source) => this.show(list, source));
  }

  destroy(): void {
    this.unsubscribe();
    for (const toast of this.toasts.splice(0)) clearTimeout(toast.timer);
    this.root.remove();
  }

  setTheme(theme: "light" | "dark" | undefined): void {
    if (theme) this.root.setAttribute("data-theme", theme);
    else this.root.removeAttribute("data-theme");
  }

  private show(notifications: Notification[], source: NotificationSource): void {
    const unread = notifications.filter((n) => !n.readAt);
    if (unread.length === 0) return;
    if (source === "batch" && unread.length > 1) {
      this.add(this.summaryToast(unread), `${unread.length} new notifications`, false);
      return;
    }
    for (const n of unread) this.add(this.notificationToast(n), announcement(n), n.type === "system:alert");
  }

  private notificationToast(n: Notification): HTMLLIElement {
    const main = h(
      "button",
      { type: "button", class: "tocsin-toast__main" },
      h("span", { class: "tocsin-toast__icon", "aria-hidden": "true" }, iconFor(n.type)),
      h(
        "span",
        { class: "tocsin-toast__text" },
        h("span", { class: "tocsin-toast__title" }, n.title),
        h("span", { class: "tocsin-toast__body" }, n.body),
      ),
    );
    const li = this.frame(main, n.type);
    li.dataset["id"] = n.id;
    main.addEventListener("click", () => {
      this.dismiss(li);
      if (n.actionUrl) {
        // keepalive: the read must reach the server even though the page is navigating away.
        void this.client.markAsRead(n.id, { keepalive: true }).catch(() => undefined);
        (this.options.navigate ?? ((url: string) => window.location.assign(url)))(n.actionUrl);
      } else {
        void this.client.markAsRead(n.id).catch(() => undefined);
      }
    });
    return li;
  }

  private summaryToast(list: Notification[]): HTMLLIElement {
    const icons = [...new Set(list.map((n) => iconFor(n.type)))].slice(0, 3).join(" ");
    const titles = list
      .slice(0, 3)
      .map((n) => n.title)
      .join(" · ");
    const main = h(
      "button",
      { type: "button", class: "tocsin-toast__main" },
      h("span", { class: "tocsin-toast__icon", "aria-hidden": "true" }, icons),
      h(
        "span",
        { class: "tocsin-toast__text" },
        h("span", { class: "tocsin-toast__title" }, `${list.length} new notifications`),
        h("span", { class: "tocsin-toast__body" }, titles),
      ),
    );
    const li = this.frame(main, "batch");
    li.dataset["count"] = String(list.length);
    main.addEventListener("click", () => this.dismiss(li));
    return li;
  }

  private frame(main: HTMLElement, type: string): HTMLLIElement {
    const close = h("button", { type: "button", class: "tocsin-toast__close", "aria-label": "Dismiss" }, "×");
    const li = h("li", { class: "tocsin-toast", "data-type": type }, main, close);
    close.addEventListener("click", () => this.dismiss(li));
    li.addEventListener("mouseenter", () => this.pause(li));
    li.addEventListener("focusin", () => this.pause(li));
    li.addEventListener("mouseleave", () => this.resume(li));
    li.addEventListener("focusout", () => this.resume(li));
    return li;
  }

  private add(el: HTMLLIElement, text: string, urgent: boolean): void {
    const region = urgent ? this.assertive : this.polite;
    region.textContent = text;
    const duration = this.options.durationMs ?? 5_000;
    const toast: Toast = { el, timer: undefined, remaining: duration, startedAt: Date.now() };
    this.toasts.push(toast);
    this.list.append(el);
    this.schedule(toast);
    const max = this.options.max ?? 3;
    while (this.toasts.length > max) {
      const oldest = this.toasts[0];
      if (oldest) this.dismiss(oldest.el);
    }
  }

  private schedule(toast: Toast): void {
    toast.startedAt = Date.now();
    toast.timer = setTimeout(() => this.dismiss(toast.el), toast.remaining);
  }

  private pause(el: HTMLElement): void {
    const toast = this.toasts.find((t) => t.el === el);
    if (!toast || toast.timer === undefined) return;
    clearTimeout(toast.timer);
    toast.timer = undefined;
    toast.remaining = Math.max(1_000, toast.remaining - (Date.now() - toast.startedAt));
  }

  private resume(el: HTMLElement): void {
    const toast = this.toasts.find((t) => t.el === el);
    if (toast && toast.timer === undefined) this.schedule(toast);
  }

  private dismiss(el: HTMLElement): void {
    const index = this.toasts.findIndex((t) => t.el === el);
    if (index === -1) return;
    const [toast] = this.toasts.splice(index, 1);
    clearTimeout(toast?.timer);
    el.remove();
  }
}
