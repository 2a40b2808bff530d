import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import {
  CLIENT_ONLY_SETTING_KEYS,
  configurationAnswer,
  initializationOptions,
  RESTART_SETTING_KEYS,
  SECTION,
  SERVER_SETTING_KEYS,
  serverSettings,
  SettingReader,
} from "../settings";

interface SettingSchema {
  type: string;
  scope?: string;
  default: unknown;
  enum?: string[];
  description?: string;
  markdownDescription?: string;
}

/** The extension's real manifest (tests run from out/test, the manifest is two folders up). */
const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8"));
const schema: Record<string, SettingSchema> = manifest.contributes.configuration.properties;

/** A reader that answers like VS Code with no user settings: every key's manifest default. */
const defaultsReader: SettingReader = (key) => schema[`${SECTION}.${key}`]?.default;

/** The defaults protocol.md gives for the server's settings. */
const PROTOCOL_DEFAULTS: Record<string, unknown> = {
  model: "auto",
  dtype: "float16",
  device: "auto",
  maxGpuMemoryGib: 0,
  enabled: true,
  languages: [],
  maxNewTokens: 64,
  contextTokens: 2048,
  temperature: 0,
  debounceMs: 0,
  reasoningEffortGenerate: "low",
  reasoningEffortExplain: "medium",
  styleGuide: "",
  indexEnabled: true,
  logLevel: "info",
  engine: "local",
  engineToken: "",
};

describe("package.json settings", () => {
  it("declares exactly the server's settings and the client-only ones", () => {
    const declared = Object.keys(schema).map((key) => key.slice(SECTION.length + 1)).sort();
    assert.deepEqual(declared, [...SERVER_SETTING_KEYS, ...CLIENT_ONLY_SETTING_KEYS].sort());
  });

  it("gives every setting a type, a default and a description", () => {
    for (const [key, setting] of Object.entries(schema)) {
      assert.ok(setting.type, `${key} has no type`);
      assert.ok("default" in setting, `${key} has no default`);
      assert.ok(setting.description || setting.markdownDescription, `${key} has no description`);
      if (setting.enum) {
        assert.ok(setting.enum.includes(setting.default as string), `${key}'s default is not in its enum`);
      }
    }
  });

  it("uses the protocol's defaults", () => {
    assert.deepEqual(serverSettings(defaultsReader), PROTOCOL_DEFAULTS);
  });

  it("lets only user settings choose the program, its arguments and where code is sent", () => {
    for (const key of ["serverPath", "serverArgs", "engine", "engineToken"]) {
      assert.equal(schema[`${SECTION}.${key}`].scope, "machine", key);
    }
    assert.equal(schema[`${SECTION}.enabled`].scope, "language-overridable");
  });

  it("has a command for every contributed menu entry", () => {
    const commands = new Set(manifest.contributes.commands.map((command: { command: string }) => command.command));
    for (const entry of manifest.contributes.menus["editor/context"]) {
      assert.ok(commands.has(entry.command), entry.command);
    }
  });
});

describe("serverSettings", () => {
  it("sends only the server's settings, never the client-only ones", () => {
    const reader: SettingReader = (key) => (key === "serverPath" ? "/opt/osslsp" : defaultsReader(key));
    const settings = serverSettings(reader);
    for (const key of CLIENT_ONLY_SETTING_KEYS) {
      assert.ok(!(key in settings), key);
    }
    assert.equal(Object.keys(settings).length, SERVER_SETTING_KEYS.length);
  });

  it("passes values through unchanged, bad ones included, for the server to validate", () => {
    const reader: SettingReader = (key) => ({ maxNewTokens: -3, model: "smollm2" })[key];
    assert.deepEqual(serverSettings(reader), { maxNewTokens: -3, model: "smollm2" });
  });
});

describe("initializationOptions", () => {
  it("asks for explanation notifications and carries the settings", () => {
    const options = initializationOptions(defaultsReader);
    assert.equal(options.explanationNotifications, true);
    assert.equal(options.model, "auto");
    assert.equal(options.maxNewTokens, 64);
    assert.ok(!("serverArgs" in options));
  });
});

describe("configurationAnswer", () => {
  it("answers the whole section with the server's settings only", () => {
    const clientAnswer = { ...PROTOCOL_DEFAULTS, serverPath: "osslsp", serverArgs: [] };
    assert.deepEqual(configurationAnswer(SECTION, clientAnswer, defaultsReader), PROTOCOL_DEFAULTS);
  });

  it("leaves answers for other sections alone", () => {
    assert.equal(configurationAnswer("editor.tabSize", 4, defaultsReader), 4);
    assert.equal(configurationAnswer(undefined, null, defaultsReader), null);
  });
});

describe("RESTART_SETTING_KEYS", () => {
  it("names client-only settings", () => {
    for (const key of RESTART_SETTING_KEYS) {
      assert.ok((CLIENT_ONLY_SETTING_KEYS as readonly string[]).includes(key));
    }
  });
});
