import { describe, expect, it } from "vitest";
import { closePolicy } from "../src/client/close-codes.js";

describe("closePolicy", () => {
  it.each([
    [1000, "stop", false],
    [1003, "hard", false],
    [1008, "hard", false],
    [1006, "backoff", false],
    [1009, "backoff", false],
    [1011, "backoff", false],
    [1012, "server-delay", false],
    [4001, "hard", true],
    [4003, "now", true],
    [4004, "backoff", false],
    [4008, "backoff", false],
    [4009, "now", false],
    [4013, "hard", false],
  ])("close %i -> %s (fresh token: %s)", (code, retry, freshToken) => {
    expect(closePolicy(code)).toEqual({ retry, freshToken });
  });
});
