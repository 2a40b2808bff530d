import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseServerStatus, SERVER_STATES, StatusModel } from "../status";

function running(): StatusModel {
  const model = new StatusModel();
  model.setProcess({ kind: "running" });
  return model;
}

describe("parseServerStatus", () => {
  it("accepts every state of the protocol", () => {
    for (const state of SERVER_STATES) {
      assert.deepEqual(parseServerStatus({ state, message: "m" }), { state, message: "m" });
    }
  });

  it("defaults a missing message to empty", () => {
    assert.deepEqual(parseServerStatus({ state: "ready" }), { state: "ready", message: "" });
  });

  it("rejects malformed params", () => {
    for (const params of [null, "ready", 3, {}, { state: "sleeping" }, { state: 1 }]) {
      assert.equal(parseServerStatus(params), undefined, JSON.stringify(params));
    }
  });
});

describe("StatusModel", () => {
  it("says what the server reports", () => {
    const cases: Array<[string, RegExp]> = [
      ["loading", /^\$\(sync~spin\) osslsp: loading model$/],
      ["indexing", /^\$\(sync~spin\) osslsp: indexing$/],
      ["generating", /^\$\(sync~spin\) osslsp: generating$/],
      ["ready", /^\$\(check\) osslsp$/],
      ["error", /^\$\(error\) osslsp: error$/],
    ];
    for (const [state, text] of cases) {
      const model = running();
      model.setServerStatus(parseServerStatus({ state, message: `about ${state}` })!);
      const view = model.view();
      assert.match(view.text, text);
      assert.match(view.tooltip, new RegExp(`about ${state}`));
      assert.match(view.tooltip, /show the osslsp log/);
      assert.equal(view.isError, state === "error");
    }
  });

  it("shows the newest progress with its percentage, and drops it when it ends", () => {
    const model = running();
    model.setServerStatus({ state: "loading", message: "" });
    model.applyProgress("load", { kind: "begin", title: "Loading gpt-oss-20b", percentage: 0 });
    model.applyProgress("load", { kind: "report", message: "shard 2 of 3", percentage: 41.6 });
    let view = model.view();
    assert.equal(view.text, "$(sync~spin) osslsp: Loading gpt-oss-20b 42%");
    assert.match(view.tooltip, /Loading gpt-oss-20b: shard 2 of 3 42%/);

    model.applyProgress(7, { kind: "begin", title: "Indexing" });
    assert.equal(model.view().text, "$(sync~spin) osslsp: Indexing");

    model.applyProgress(7, { kind: "end" });
    model.applyProgress("load", { kind: "end", message: "done" });
    model.setServerStatus({ state: "ready", message: "" });
    view = model.view();
    assert.equal(view.text, "$(check) osslsp");
    assert.doesNotMatch(view.tooltip, /Loading/);
  });

  it("shows one osslsp prefix for the server's own prefixed progress titles", () => {
    const model = running();
    model.setServerStatus({ state: "loading", message: "loading smollm2" });
    model.applyProgress("load", { kind: "begin", title: "osslsp: loading smollm2" });
    const view = model.view();
    assert.equal(view.text, "$(sync~spin) osslsp: loading smollm2");
    assert.doesNotMatch(view.tooltip, /osslsp: osslsp/);
  });

  it("keeps the last message and percentage when a report leaves them out", () => {
    const model = running();
    model.applyProgress("t", { kind: "begin", title: "Loading", message: "weights", percentage: 10 });
    model.applyProgress("t", { kind: "report" });
    assert.match(model.view().tooltip, /Loading: weights 10%/);
  });

  it("ignores reports for progress that never began", () => {
    const model = running();
    model.setServerStatus({ state: "ready", message: "" });
    model.applyProgress("unknown", { kind: "report", percentage: 50 });
    assert.equal(model.view().text, "$(check) osslsp");
  });

  it("shortens long progress titles", () => {
    const model = running();
    model.applyProgress("t", { kind: "begin", title: "Explaining ".repeat(10) });
    assert.ok(model.view().text.length < 60);
    assert.match(model.view().text, /…$/);
  });

  it("puts a server error above progress", () => {
    const model = running();
    model.applyProgress("t", { kind: "begin", title: "Indexing" });
    model.setServerStatus({ state: "error", message: "CUDA out of memory" });
    const view = model.view();
    assert.equal(view.text, "$(error) osslsp: error");
    assert.match(view.tooltip, /CUDA out of memory/);
    assert.equal(view.isError, true);
  });

  it("describes the process when the server is not running, forgetting its last status", () => {
    const model = running();
    model.setServerStatus({ state: "ready", message: "" });
    model.applyProgress("t", { kind: "begin", title: "Indexing" });

    model.setProcess({ kind: "restarting", delayMs: 4_000 });
    let view = model.view();
    assert.equal(view.text, "$(error) osslsp: restarting");
    assert.match(view.tooltip, /restarting it in 4 s/);
    assert.equal(view.isError, true);

    model.setProcess({ kind: "failed", message: "Cannot find the osslsp server" });
    view = model.view();
    assert.equal(view.text, "$(error) osslsp");
    assert.match(view.tooltip, /Cannot find the osslsp server/);

    model.setProcess({ kind: "starting" });
    assert.equal(model.view().text, "$(sync~spin) osslsp: starting");

    model.setProcess({ kind: "running" });
    assert.equal(model.view().text, "$(sync~spin) osslsp: starting");
    assert.doesNotMatch(model.view().tooltip, /Indexing/);

    model.setProcess({ kind: "stopped" });
    assert.equal(model.view().isError, false);
    assert.match(model.view().tooltip, /stopped/);
  });
});
