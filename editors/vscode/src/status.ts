/**
 * What the status bar item says, from the server's `osslsp/status` notifications, its
 * `$/progress` reports and the state of the server process.
 */

/** The states the server reports in `osslsp/status` (protocol.md). */
export const SERVER_STATES = ["loading", "indexing", "ready", "generating", "error"] as const;
export type ServerState = (typeof SERVER_STATES)[number];

export interface ServerStatus {
  state: ServerState;
  message: string;
}

/** The server process as the extension sees it. */
export type ProcessState =
  | { kind: "starting" }
  | { kind: "running" }
  | { kind: "restarting"; delayMs: number }
  | { kind: "failed"; message: string }
  | { kind: "stopped" };

/** The `value` of a `$/progress` notification for work done progress (LSP). */
export type WorkDoneProgressValue =
  | { kind: "begin"; title: string; message?: string; percentage?: number }
  | { kind: "report"; message?: string; percentage?: number }
  | { kind: "end"; message?: string };

interface ActiveProgress {
  title: string;
  message?: string;
  percentage?: number;
}

/** What the status bar item shows. `text` may hold codicons (`$(name)`). */
export interface StatusView {
  text: string;
  tooltip: string;
  isError: boolean;
}

const BUSY = "$(sync~spin)";
const LABEL_FOR_STATE: Record<ServerState, string> = {
  loading: "loading model",
  indexing: "indexing",
  ready: "ready",
  generating: "generating",
  error: "error",
};
const MAX_TITLE_CHARS = 32;
const CLICK_HINT = "Click to show the osslsp log.";

/** `params` of an `osslsp/status` notification, or undefined when they are malformed. */
export function parseServerStatus(params: unknown): ServerStatus | undefined {
  if (typeof params !== "object" || params === null) {
    return undefined;
  }
  const { state, message } = params as Record<string, unknown>;
  if (typeof state !== "string" || !(SERVER_STATES as readonly string[]).includes(state)) {
    return undefined;
  }
  return { state: state as ServerState, message: typeof message === "string" ? message : "" };
}

function shorten(text: string, limit: number): string {
  return text.length <= limit ? text : text.slice(0, limit - 1) + "…";
}

/** A progress title without the server's own "osslsp:" prefix: the status bar item adds it. */
function progressTitle(title: string): string {
  return title.replace(/^osslsp:\s*/, "");
}

function percentText(percentage: number | undefined): string {
  return percentage === undefined ? "" : ` ${Math.round(percentage)}%`;
}

/** Combines everything known about the server into one status bar view. */
export class StatusModel {
  private process: ProcessState = { kind: "stopped" };
  private server: ServerStatus | undefined;
  /** Work done progress by token, in the order it began: the newest is shown. */
  private readonly progress = new Map<string, ActiveProgress>();

  /** A new process state. A server that is not running reports nothing: its status is dropped. */
  setProcess(process: ProcessState): void {
    this.process = process;
    if (process.kind !== "running") {
      this.server = undefined;
      this.progress.clear();
    }
  }

  setServerStatus(status: ServerStatus): void {
    this.server = status;
  }

  /** Apply one `$/progress` value for `token`. */
  applyProgress(token: string | number, value: WorkDoneProgressValue): void {
    const key = String(token);
    if (value.kind === "begin") {
      this.progress.set(key, { title: progressTitle(value.title), message: value.message, percentage: value.percentage });
      return;
    }
    const active = this.progress.get(key);
    if (active === undefined) {
      return;
    }
    if (value.kind === "end") {
      this.progress.delete(key);
      return;
    }
    active.message = value.message ?? active.message;
    active.percentage = value.percentage ?? active.percentage;
  }

  view(): StatusView {
    switch (this.process.kind) {
      case "stopped":
        return { text: "$(circle-slash) osslsp", tooltip: `osslsp: server stopped. ${CLICK_HINT}`, isError: false };
      case "starting":
        return { text: `${BUSY} osslsp: starting`, tooltip: `osslsp: starting the server. ${CLICK_HINT}`, isError: false };
      case "failed":
        return { text: "$(error) osslsp", tooltip: `osslsp: ${this.process.message}\n${CLICK_HINT}`, isError: true };
      case "restarting": {
        const seconds = Math.ceil(this.process.delayMs / 1000);
        return {
          text: "$(error) osslsp: restarting",
          tooltip: `osslsp: the server stopped; restarting it in ${seconds} s. ${CLICK_HINT}`,
          isError: true,
        };
      }
      case "running":
        return this.runningView();
    }
  }

  private runningView(): StatusView {
    const lines: string[] = [];
    if (this.server !== undefined) {
      lines.push(`osslsp: ${LABEL_FOR_STATE[this.server.state]}${this.server.message ? ` (${this.server.message})` : ""}`);
    }
    for (const active of this.progress.values()) {
      lines.push(`${active.title}${active.message ? `: ${active.message}` : ""}${percentText(active.percentage)}`);
    }
    lines.push(CLICK_HINT);
    const tooltip = lines.join("\n");
    if (this.server?.state === "error") {
      return { text: "$(error) osslsp: error", tooltip, isError: true };
    }
    const newest = [...this.progress.values()].pop();
    if (newest !== undefined) {
      return { text: `${BUSY} osslsp: ${shorten(newest.title, MAX_TITLE_CHARS)}${percentText(newest.percentage)}`, tooltip, isError: false };
    }
    if (this.server === undefined) {
      // Started, but the server has not said what it is doing yet.
      return { text: `${BUSY} osslsp: starting`, tooltip, isError: false };
    }
    if (this.server.state === "ready") {
      return { text: "$(check) osslsp", tooltip, isError: false };
    }
    return { text: `${BUSY} osslsp: ${LABEL_FOR_STATE[this.server.state]}`, tooltip, isError: false };
  }
}
