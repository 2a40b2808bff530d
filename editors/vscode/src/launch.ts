/**
 * How the server process is started: the command line from the settings, where the executable is,
 * and what to tell the user when it cannot start.
 */

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SettingReader } from "./settings";

export const DEFAULT_SERVER_PATH = "osslsp";

/** The command line that starts the server, and a warning for each setting that was ignored. */
export interface ServerLaunch {
  command: string;
  args: string[];
  warnings: string[];
}

/**
 * `osslsp serve` plus `osslsp.serverArgs`, run as `osslsp.serverPath`.
 * A leading `~` is the home folder. A blank or non-string path falls back to `osslsp` on PATH;
 * a bad argument list is ignored.
 * Both are reported as warnings rather than stopping the server from starting.
 */
export function serverLaunch(read: SettingReader): ServerLaunch {
  const warnings: string[] = [];
  const rawPath = read("serverPath");
  let command = DEFAULT_SERVER_PATH;
  if (typeof rawPath === "string") {
    // No shell runs the command, so expand `~` as a shell would.
    command = (rawPath.trim() || DEFAULT_SERVER_PATH).replace(/^~(?=$|[\\/])/, os.homedir());
  } else if (rawPath !== undefined) {
    warnings.push(`osslsp.serverPath must be a string; using "${DEFAULT_SERVER_PATH}" from PATH`);
  }
  const rawArgs = read("serverArgs");
  let extraArgs: string[] = [];
  if (Array.isArray(rawArgs) && rawArgs.every((arg) => typeof arg === "string")) {
    extraArgs = rawArgs;
  } else if (rawArgs !== undefined) {
    warnings.push("osslsp.serverArgs must be a list of strings; ignoring it");
  }
  return { command, args: ["serve", ...extraArgs], warnings };
}

/** Names an executable may have on this platform: Windows adds the PATHEXT extensions. */
function executableNames(command: string, platform: NodeJS.Platform, env: NodeJS.ProcessEnv): string[] {
  if (platform !== "win32") {
    return [command];
  }
  const extensions = (env.PATHEXT ?? ".COM;.EXE;.BAT;.CMD").split(";").filter(Boolean);
  return [command, ...extensions.map((extension) => command + extension)];
}

function isExecutableFile(candidate: string, platform: NodeJS.Platform): boolean {
  try {
    if (!fs.statSync(candidate).isFile()) {
      return false;
    }
    // Windows has no execute bit: the extension (PATHEXT) decides.
    if (platform !== "win32") {
      fs.accessSync(candidate, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * The file that `command` runs, as a shell would find it: a path containing a separator is taken
 * as is (relative to `cwd`), a bare name is looked up on PATH. Undefined when there is none, so
 * that the extension can say "osslsp not found" instead of a spawn error.
 */
export function findExecutable(
  command: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  cwd: string = process.cwd(),
): string | undefined {
  const pathApi = platform === "win32" ? path.win32 : path.posix;
  const hasSeparator = command.includes("/") || (platform === "win32" && command.includes("\\"));
  const directories = hasSeparator
    ? [""]
    : (env.PATH ?? env.Path ?? "").split(pathApi.delimiter).filter(Boolean);
  for (const directory of directories) {
    for (const name of executableNames(command, platform, env)) {
      const candidate = pathApi.resolve(cwd, directory, name);
      if (isExecutableFile(candidate, platform)) {
        return candidate;
      }
    }
  }
  return undefined;
}

/** What to tell the user when the executable cannot be found. */
export function missingExecutableMessage(command: string): string {
  return (
    `Cannot find the osslsp server "${command}". Install the osslsp Python package so that ` +
    `"osslsp" is on the PATH VS Code was started with, or set "osslsp.serverPath" to the ` +
    `executable's absolute path (e.g. the one in your virtual environment's bin folder).`
  );
}
