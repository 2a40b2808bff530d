/**
 * The `osslsp.*` settings: which ones the server reads, and what it is sent.
 *
 * Plain module (no `vscode` import) so that it can be tested without VS Code: settings are
 * read through a `SettingReader`, which the extension backs with `WorkspaceConfiguration.get`.
 */

/** The configuration section, the same name the server asks for in `workspace/configuration`. */
export const SECTION = "osslsp";

/** Settings the server understands (protocol.md). The server validates their values itself. */
export const SERVER_SETTING_KEYS = [
  "model",
  "dtype",
  "device",
  "maxGpuMemoryGib",
  "enabled",
  "languages",
  "maxNewTokens",
  "contextTokens",
  "temperature",
  "debounceMs",
  "reasoningEffortGenerate",
  "reasoningEffortExplain",
  "styleGuide",
  "indexEnabled",
  "logLevel",
  "engine",
  "engineToken",
] as const;

export type ServerSettingKey = (typeof SERVER_SETTING_KEYS)[number];

/**
 * Settings only the extension reads: how to start the server and how to trace it.
 * The server would warn about them as unknown, so they are never sent.
 */
export const CLIENT_ONLY_SETTING_KEYS = ["serverPath", "serverArgs", "trace.server"] as const;

/** Client-only settings that change how the server is started: a change restarts it. */
export const RESTART_SETTING_KEYS = ["serverPath", "serverArgs"] as const;

/** Reads one setting by its key inside the section (`"maxNewTokens"`); undefined when unset. */
export type SettingReader = (key: string) => unknown;

/** The server's settings as one camelCase object; keys whose value is undefined are left out. */
export function serverSettings(read: SettingReader): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const key of SERVER_SETTING_KEYS) {
    const value = read(key);
    if (value !== undefined) {
      settings[key] = value;
    }
  }
  return settings;
}

/**
 * `initializationOptions` for the `initialize` request: the server's settings, plus the flag that
 * makes the server stream `osslsp/explanation` notifications (which the extension renders)
 * instead of opening the finished explanation through `window/showDocument`.
 */
export function initializationOptions(read: SettingReader): Record<string, unknown> {
  return { explanationNotifications: true, ...serverSettings(read) };
}

/**
 * The answer to one `workspace/configuration` item: the server's settings only when it asks for the
 * whole section, the client's own answer otherwise (a single key, another section).
 */
export function configurationAnswer(section: string | undefined, answer: unknown, read: SettingReader): unknown {
  return section === SECTION ? serverSettings(read) : answer;
}
