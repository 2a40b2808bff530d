/**
 * The level at which a line of the server's stderr goes into the log. The client library logs
 * every stderr line as an error; the server's stderr is mostly Python's logging at INFO (and the
 * first-run notice), which the log would then show as a wall of errors.
 */

export type LogLevel = "error" | "warn" | "info" | "debug";

const PYTHON_LEVELS: Record<string, LogLevel> = {
  CRITICAL: "error",
  ERROR: "error",
  WARNING: "warn",
  INFO: "info",
  DEBUG: "debug",
};

/** The level of one stderr line: Python logging's own, error for a traceback, info otherwise. */
export function stderrLevel(line: string): LogLevel {
  const logged = / (CRITICAL|ERROR|WARNING|INFO|DEBUG) /.exec(line);
  if (logged !== null) {
    return PYTHON_LEVELS[logged[1]];
  }
  return /^Traceback |^\w+(Error|Exception)\b/.test(line) ? "error" : "info";
}
