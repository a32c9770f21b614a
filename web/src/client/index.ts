export { TocsinClient, defaultApiBase } from "./tocsin.js";
export type { NotificationSource, TocsinOptions, TocsinSnapshot } from "./tocsin.js";
export { Backoff } from "./backoff.js";
export { NotificationState } from "./state.js";
export type {
  BuiltinType,
  ConnectionStatus,
  Counts,
  Notification,
  ServerFrame,
  TokenProvider,
} from "./types.js";
