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
export { CHANNELS, FieldError, PreferencesApi, normalizePreferences } from "./preferences.js";
export type { Channel, ChannelDefaults, ChannelRules, Preferences, QuietHours } from "./preferences.js";
export { PushUnavailableError, pushState, pushSupported, registerServiceWorker } from "./push.js";
export type { PushOptions, PushState } from "./push.js";
export { RestError } from "./rest.js";
