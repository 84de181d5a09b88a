import { describe, expect, it } from "vitest";
import { FixedWindows } from "../../gateway/auth/hook.js";

describe("FixedWindows (the per-principal and per-address limits)", () => {
  it("serves `limit` events per window, then says how long to wait, and starts afresh when the window ends", () => {
    let now = 1_000_000;
    const w = new FixedWindows(3, 10_000, () => now);
    expect([w.count("a"), w.count("a"), w.count("a")]).toEqual([0, 0, 0]);
    expect(w.waitSec("a")).toBe(10);
    now += 2_500;
    expect(w.count("a")).toBe(8); // 7.5 s left, rounded up
    expect(w.waitSec("b")).toBe(0);
    expect(w.count("b")).toBe(0);
    now += 7_499;
    expect(w.waitSec("a")).toBe(1);
    now += 1;
    expect(w.waitSec("a")).toBe(0);
    expect(w.count("a")).toBe(0);
  });

  it("never answers a wait of 0 for a refused event, even at the window's last millisecond", () => {
    let now = 0;
    const w = new FixedWindows(1, 1_000, () => now);
    w.count("k");
    now = 999;
    expect(w.count("k")).toBe(1);
  });

  it("stays bounded: ended windows are dropped first, live ones survive while there is room", () => {
    let now = 0;
    const w = new FixedWindows(1, 1_000, () => now, 4);
    w.count("old1");
    w.count("old2");
    now = 900;
    w.count("live");
    w.count("live"); // over its limit
    w.count("x");
    now = 1_500; // old1, old2 ended; live and x still running
    w.count("new");
    expect(w.waitSec("live")).toBe(1);
    expect(w.waitSec("old1")).toBe(0);
    // a map full of live windows starts afresh rather than growing
    const full = new FixedWindows(1, 60_000, () => now, 3);
    for (const k of ["a", "b", "c"]) full.count(k);
    full.count("a");
    expect(full.waitSec("a")).toBeGreaterThan(0);
    full.count("d");
    expect(full.waitSec("a")).toBe(0);
  });
});
