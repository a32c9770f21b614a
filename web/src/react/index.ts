export { TocsinProvider, useTocsinClient } from "./context.js";
export type { TocsinProviderProps } from "./context.js";
export { useNotificationEvents, useNotifications } from "./hooks.js";
export type { UseNotifications } from "./hooks.js";
export { NotificationBell, Toaster } from "./views.js";
export type { NotificationBellProps, ToasterProps } from "./views.js";
