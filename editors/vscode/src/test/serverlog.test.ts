import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { stderrLevel } from "../serverlog";

describe("stderrLevel", () => {
  it("takes Python logging's level", () => {
    assert.equal(stderrLevel("2026-12-01 23:23:28,151 INFO osslsp.server: loading smollm2"), "info");
    assert.equal(stderrLevel("2026-12-01 23:23:28,151 WARNING osslsp.server: bad setting"), "warn");
    assert.equal(stderrLevel("2026-12-01 23:23:28,151 ERROR osslsp.engine: loading failed"), "error");
    assert.equal(stderrLevel("2026-12-01 23:23:28,151 DEBUG osslsp.index: batch"), "debug");
  });

  it("calls a traceback an error and anything else info", () => {
    assert.equal(stderrLevel("Traceback (most recent call last):"), "error");
    assert.equal(stderrLevel("RuntimeError: CUDA out of memory"), "error");
    assert.equal(stderrLevel("osslsp: the first use of x.gguf converts it (once, 20-60 s)"), "info");
    assert.equal(stderrLevel("Converting and de-quantizing GGUF tensors...: 11%"), "info");
  });
});
