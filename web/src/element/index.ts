export { socketUrl, TocsinBellElement } from "./tocsin-bell.js";
