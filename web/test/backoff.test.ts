import { describe, expect, it } from "vitest";
import { Backoff } from "../src/client/backoff.js";

describe("Backoff (full jitter)", () => {
  it("draws each delay uniformly below a ceiling that doubles", () => {
    const draws = [0.5, 0.5, 0.5, 0.5];
    const backoff = new Backoff({ baseMs: 100, capMs: 10_000, random: () => draws.shift() ?? 0 });
    expect([backoff.next(), backoff.next(), backoff.next(), backoff.next()]).toEqual([50, 100, 200, 400]);
  });

  it("never exceeds the cap, however many attempts", () => {
    const backoff = new Backoff({ baseMs: 100, capMs: 1_000, random: () => 0.999_999 });
    const delays = Array.from({ length: 2000 }, () => backoff.next());
    expect(Math.max(...delays)).toBeLessThan(1_000);
    expect(delays.at(-1)).toBe(999);
    expect(backoff.ceiling()).toBe(1_000);
  });

  it("can draw zero: full jitter spreads over the whole window", () => {
    const backoff = new Backoff({ baseMs: 100, capMs: 1_000, random: () => 0 });
    expect(backoff.next()).toBe(0);
    expect(backoff.next()).toBe(0);
  });

  it("stays inside [0, ceiling) with the real random source", () => {
    const backoff = new Backoff({ baseMs: 500, capMs: 30_000 });
    for (let i = 0; i < 50; i++) {
      const ceiling = backoff.ceiling();
      const delay = backoff.next();
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(ceiling);
    }
  });

  it("starts over after a reset (a good connection)", () => {
    const backoff = new Backoff({ baseMs: 100, capMs: 10_000, random: () => 0.5 });
    backoff.next();
    backoff.next();
    backoff.next();
    expect(backoff.attempts).toBe(3);
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.next()).toBe(50);
  });
});
