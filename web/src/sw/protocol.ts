/**
 * Messages between the service worker (/tocsin-sw.js) and the pages of its origin. Every message
 * carries `tocsin` (the kind) and is answered on the MessageChannel port sent with it.
 *
 * SW -> page  {tocsin: "holds", id}        page answers {ok: true} if its client holds that
 *                                          notification (so it was shown in the tab)
 * SW -> page  {tocsin: "mark-read", id}    page marks it read with its own token, answers {ok}
 * page -> SW  {tocsin: "pending-reads"}    SW answers {ids}: notifications clicked while no page
 *                                          could mark them read
 * page -> SW  {tocsin: "reads-done", ids}  SW forgets them, answers {ok: true}
 */
export const SW_PATH = "/tocsin-sw.js";

export type SwRequest =
  | { tocsin: "holds"; id: string }
  | { tocsin: "mark-read"; id: string }
  | { tocsin: "pending-reads" }
  | { tocsin: "reads-done"; ids: string[] };

export interface SwAnswer {
  ok?: boolean;
  ids?: string[];
}

/** The JSON the worker (H-E's `tocsin worker`) sends as the push message's data. */
export interface PushPayload {
  id: string;
  title: string;
  body: string;
  type: string;
  actionUrl: string | null;
  icon?: string;
}

export function isSwRequest(value: unknown): value is SwRequest {
  if (typeof value !== "object" || value === null) return false;
  const kind = (value as { tocsin?: unknown }).tocsin;
  if (kind === "holds" || kind === "mark-read") return typeof (value as { id?: unknown }).id === "string";
  if (kind === "reads-done") return Array.isArray((value as { ids?: unknown }).ids);
  return kind === "pending-reads";
}
