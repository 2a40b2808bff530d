import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { findExecutable, missingExecutableMessage, serverLaunch } from "../launch";

function reader(values: Record<string, unknown>) {
  return (key: string) => values[key];
}

describe("serverLaunch", () => {
  it("runs `osslsp serve` from PATH by default", () => {
    assert.deepEqual(serverLaunch(reader({ serverPath: "osslsp", serverArgs: [] })), {
      command: "osslsp",
      args: ["serve"],
      warnings: [],
    });
  });

  it("uses the configured path and appends the extra arguments", () => {
    const launch = serverLaunch(reader({ serverPath: " /venv/bin/osslsp ", serverArgs: ["--model", "tiny", "-v"] }));
    assert.equal(launch.command, "/venv/bin/osslsp");
    assert.deepEqual(launch.args, ["serve", "--model", "tiny", "-v"]);
    assert.deepEqual(launch.warnings, []);
  });

  it("expands a leading ~ to the home folder", () => {
    assert.equal(serverLaunch(reader({ serverPath: "~/venv/bin/osslsp" })).command, path.join(os.homedir(), "venv/bin/osslsp"));
    assert.equal(serverLaunch(reader({ serverPath: "/a/~b" })).command, "/a/~b");
  });

  it("falls back to `osslsp` for a blank path without a warning", () => {
    const launch = serverLaunch(reader({ serverPath: "   " }));
    assert.equal(launch.command, "osslsp");
    assert.deepEqual(launch.warnings, []);
  });

  it("warns about and ignores settings of the wrong type", () => {
    const launch = serverLaunch(reader({ serverPath: 42, serverArgs: "--model tiny" }));
    assert.equal(launch.command, "osslsp");
    assert.deepEqual(launch.args, ["serve"]);
    assert.equal(launch.warnings.length, 2);
    assert.match(launch.warnings[0], /serverPath/);
    assert.match(launch.warnings[1], /serverArgs/);
  });
});

describe("findExecutable", () => {
  let root: string;
  let bin: string;
  let other: string;

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "osslsp-launch-"));
    bin = path.join(root, "bin");
    other = path.join(root, "other");
    fs.mkdirSync(bin);
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(bin, "osslsp"), "#!/bin/sh\n", { mode: 0o755 });
    fs.writeFileSync(path.join(other, "osslsp"), "not executable\n", { mode: 0o644 });
    fs.mkdirSync(path.join(other, "folder"));
  });

  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("finds a bare name on PATH, skipping files that are not executable", () => {
    const env = { PATH: [other, bin].join(path.delimiter) };
    assert.equal(findExecutable("osslsp", env, "linux"), path.join(bin, "osslsp"));
  });

  it("finds nothing when PATH lacks it or only has a non-executable file", () => {
    assert.equal(findExecutable("osslsp", { PATH: other }, "linux"), undefined);
    assert.equal(findExecutable("osslsp", {}, "linux"), undefined);
  });

  it("takes a path with a separator as is, relative to the working folder", () => {
    assert.equal(findExecutable(path.join(bin, "osslsp"), { PATH: "" }, "linux"), path.join(bin, "osslsp"));
    assert.equal(findExecutable("bin/osslsp", { PATH: "" }, "linux", root), path.join(bin, "osslsp"));
    assert.equal(findExecutable("other/folder", { PATH: "" }, "linux", root), undefined);
  });

  it("names the setting to fix in its message", () => {
    assert.match(missingExecutableMessage("osslsp"), /osslsp\.serverPath/);
  });
});
