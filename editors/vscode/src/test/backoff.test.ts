import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RestartBackoff } from "../backoff";

const policy = { initialMs: 1_000, maxMs: 8_000, stableMs: 60_000 };

describe("RestartBackoff", () => {
  it("doubles the delay after each quick crash, up to the cap", () => {
    const backoff = new RestartBackoff(policy);
    const delays: number[] = [];
    let now = 0;
    for (let crash = 0; crash < 6; crash += 1) {
      backoff.started(now);
      now += 500;
      const delay = backoff.crashed(now);
      delays.push(delay);
      now += delay;
    }
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  });

  it("starts over after a run of a stable minute", () => {
    const backoff = new RestartBackoff(policy);
    backoff.started(0);
    backoff.crashed(10);
    backoff.started(1_000);
    assert.equal(backoff.crashed(1_010), 2_000);
    backoff.started(5_000);
    assert.equal(backoff.crashed(5_000 + 60_000), 1_000);
  });

  it("keeps backing off for a run just short of a minute", () => {
    const backoff = new RestartBackoff(policy);
    backoff.started(0);
    backoff.crashed(10);
    backoff.started(1_000);
    assert.equal(backoff.crashed(1_000 + 59_999), 2_000);
  });

  it("keeps backing off when the server never came up between crashes", () => {
    const backoff = new RestartBackoff(policy);
    assert.equal(backoff.crashed(0), 1_000);
    assert.equal(backoff.crashed(500_000), 2_000);
  });

  it("forgets everything on reset", () => {
    const backoff = new RestartBackoff(policy);
    backoff.crashed(0);
    backoff.crashed(1);
    backoff.reset();
    assert.equal(backoff.crashed(2), 1_000);
  });

  it("defaults to 1 s, 2 s, 4 s ... capped at 30 s", () => {
    const backoff = new RestartBackoff();
    const delays = Array.from({ length: 7 }, (_, index) => backoff.crashed(index));
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });
});
