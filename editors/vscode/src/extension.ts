/**
 * The VS Code side of osslsp: starts `osslsp serve`, keeps it running, shows its state in the
 * status bar, and wires the commands and the explanation panel. Everything that can be decided
 * without VS Code lives in the plain modules next to this file (and is tested there).
 */

import * as readline from "node:readline";
import type { Readable } from "node:stream";
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
} from "vscode-languageclient/node";
import { RestartBackoff } from "./backoff";
import {
  explanationContent,
  explanationKey,
  explanationPage,
  ExplanationRequests,
  explanationTitle,
  makeNonce,
  parseExplanation,
  Range,
} from "./explanation";
import { findExecutable, missingExecutableMessage, serverLaunch } from "./launch";
import { parseShowPromptResult, promptDocument } from "./prompt";
import {
  configurationAnswer,
  initializationOptions,
  RESTART_SETTING_KEYS,
  SECTION,
  serverSettings,
  SettingReader,
} from "./settings";
import { stderrLevel } from "./serverlog";
import { parseServerStatus, ProcessState, StatusModel, WorkDoneProgressValue } from "./status";

/** Reads `osslsp.*` settings for `scope` (a document, for language-specific values). */
function settingReader(scope?: vscode.ConfigurationScope): SettingReader {
  const configuration = vscode.workspace.getConfiguration(SECTION, scope);
  return (key) => configuration.get(key);
}

/** Calls `onLine` with each line of a server output stream. */
function readLines(input: Readable, onLine: (line: string) => void): void {
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false }).on("line", onLine);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The status bar item, redrawn from a `StatusModel` whenever something changes. */
class StatusBar implements vscode.Disposable {
  readonly model = new StatusModel();
  private readonly item = vscode.window.createStatusBarItem("osslsp.status", vscode.StatusBarAlignment.Right, 100);

  constructor() {
    this.item.name = "osslsp";
    this.item.command = "osslsp.showLog";
    this.redraw();
    this.item.show();
  }

  redraw(): void {
    const view = this.model.view();
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.isError ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** One side panel that shows the latest explanation as it streams in. */
class ExplanationPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private shownKey: string | undefined;
  readonly requests = new ExplanationRequests();

  /** Show `markdown` for the explanation of `range` in `uri`: a new page, or an update. */
  show(uri: string, range: Range, markdown: string, done: boolean): void {
    const key = explanationKey(uri, range);
    if (!this.requests.shows(key)) {
      return;
    }
    const title = explanationTitle(uri, range);
    const content = explanationContent(markdown, done);
    if (this.panel === undefined) {
      this.panel = vscode.window.createWebviewPanel(
        "osslsp.explanation",
        `Explain ${title}`,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: true, enableCommandUris: false, localResourceRoots: [], retainContextWhenHidden: true },
      );
      this.panel.onDidDispose(() => {
        this.panel = undefined;
        this.shownKey = undefined;
        this.requests.panelClosed();
      });
    }
    if (key !== this.shownKey) {
      this.shownKey = key;
      this.panel.title = `Explain ${title}`;
      this.panel.webview.html = explanationPage(title, content, makeNonce());
      this.panel.reveal(vscode.ViewColumn.Beside, true);
    } else {
      void this.panel.webview.postMessage(content);
    }
  }

  dispose(): void {
    this.panel?.dispose();
  }
}

/** Runs the language server: starts it, restarts it with backoff when it dies, stops it. */
class ServerSupervisor implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly backoff = new RestartBackoff();

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly statusBar: StatusBar,
    private readonly explanations: ExplanationPanel,
  ) {}

  /** The client when the server is up, to send requests through. */
  runningClient(): LanguageClient | undefined {
    return this.client?.isRunning() ? this.client : undefined;
  }

  async start(): Promise<void> {
    this.cancelRestart();
    const launch = serverLaunch(settingReader());
    launch.warnings.forEach((warning) => this.output.appendLine(warning));
    if (findExecutable(launch.command) === undefined) {
      // Retrying cannot help until the user installs osslsp or fixes the setting (which restarts).
      this.fail(missingExecutableMessage(launch.command));
      return;
    }
    const client = this.createClient(launch.command, launch.args);
    this.client = client;
    this.setProcess({ kind: "starting" });
    try {
      await client.start();
    } catch (error) {
      if (client === this.client) {
        this.output.appendLine(`osslsp server failed to start: ${errorText(error)}`);
        this.scheduleRestart(client);
      }
      return;
    }
    if (client === this.client) {
      this.backoff.started(Date.now());
      this.setProcess({ kind: "running" });
    }
  }

  /** Stop the server (if any) and start it again at once. */
  async restart(): Promise<void> {
    this.backoff.reset();
    await this.stopClient();
    await this.start();
  }

  async stop(): Promise<void> {
    await this.stopClient();
    this.setProcess({ kind: "stopped" });
  }

  dispose(): void {
    void this.stop();
  }

  private async stopClient(): Promise<void> {
    this.cancelRestart();
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      try {
        await client.dispose(5_000);
      } catch (error) {
        this.output.appendLine(`osslsp server did not stop cleanly: ${errorText(error)}`);
      }
    }
  }

  private fail(message: string): void {
    this.output.appendLine(message);
    this.setProcess({ kind: "failed", message });
    void vscode.window.showErrorMessage(message, "Show Log").then((choice) => {
      if (choice) {
        this.output.show(true);
      }
    });
  }

  private setProcess(process: ProcessState): void {
    this.statusBar.model.setProcess(process);
    this.statusBar.redraw();
  }

  private cancelRestart(): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
  }

  /** Restart `client`'s server after the backoff delay; returns the line that says so. */
  private scheduleRestart(client: LanguageClient): string {
    if (client !== this.client) {
      return "osslsp server stopped.";
    }
    if (this.restartTimer !== undefined) {
      return "osslsp server stopped; a restart is already scheduled.";
    }
    const delayMs = this.backoff.crashed(Date.now());
    this.setProcess({ kind: "restarting", delayMs });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restartAfterCrash(client);
    }, delayMs);
    return `osslsp server stopped; restarting it in ${delayMs / 1000} s.`;
  }

  private async restartAfterCrash(crashed: LanguageClient): Promise<void> {
    if (crashed !== this.client) {
      return; // The user restarted or stopped it meanwhile.
    }
    await this.stopClient();
    await this.start();
  }

  private createClient(command: string, args: string[]): LanguageClient {
    const options: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      stdioOptions: {
        stdout: (input, channel) => readLines(input, (line) => channel.info(line)),
        stderr: (input, channel) => readLines(input, (line) => channel[stderrLevel(line)](line)),
      },
      initializationOptions: initializationOptions(settingReader()),
      synchronize: { configurationSection: SECTION },
      errorHandler: {
        error: (_error, _message, count) => ({ action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown }),
        // The client's own restart has no backoff: do it here instead.
        closed: () => ({ action: CloseAction.DoNotRestart, handled: true, message: this.scheduleRestart(client) }),
      },
      middleware: {
        workspace: {
          // Only the server's settings go to the server: it warns about unknown keys.
          didChangeConfiguration: async () => {
            await client.sendNotification(DidChangeConfigurationNotification.type, {
              settings: { [SECTION]: serverSettings(settingReader()) },
            });
          },
          configuration: async (params, token, next) => {
            const answers = await next(params, token);
            if (!Array.isArray(answers)) {
              return answers;
            }
            return answers.map((answer, index) => {
              const item = params.items[index];
              const scope = item?.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined;
              return configurationAnswer(item?.section, answer, settingReader(scope));
            });
          },
        },
        // `osslsp.enabled` may be turned off for one language ("[markdown]": {...}).
        provideInlineCompletionItems: (document, position, context, token, next) =>
          settingReader(document)("enabled") === false ? undefined : next(document, position, context, token),
        provideCompletionItem: (document, position, context, token, next) =>
          settingReader(document)("enabled") === false ? undefined : next(document, position, context, token),
        // The status bar item shows the server's progress: VS Code's own window progress would
        // show it a second time. Everything but "begin" still goes on, so that the client's
        // progress part is disposed of at "end".
        handleWorkDoneProgress: (token, params, next) => {
          this.statusBar.model.applyProgress(token, params as WorkDoneProgressValue);
          this.statusBar.redraw();
          if ((params as WorkDoneProgressValue).kind !== "begin") {
            next(token, params);
          }
        },
      },
    };
    const client = new LanguageClient("osslsp", "osslsp", { command, args }, options);
    client.onNotification("osslsp/status", (params: unknown) => {
      const status = parseServerStatus(params);
      if (status === undefined) {
        this.output.appendLine(`Ignoring a malformed osslsp/status notification: ${JSON.stringify(params)}`);
        return;
      }
      this.statusBar.model.setServerStatus(status);
      this.statusBar.redraw();
    });
    client.onNotification("osslsp/explanation", (params: unknown) => {
      const explanation = parseExplanation(params);
      if (explanation === undefined) {
        this.output.appendLine(`Ignoring a malformed osslsp/explanation notification: ${JSON.stringify(params)}`);
        return;
      }
      this.explanations.show(explanation.uri, explanation.range, explanation.markdown, explanation.done);
    });
    return client;
  }
}

/** The commands the extension contributes (package.json `contributes.commands`). */
function registerCommands(
  context: vscode.ExtensionContext,
  output: vscode.LogOutputChannel,
  supervisor: ServerSupervisor,
  explanations: ExplanationPanel,
): void {
  /** The active editor and the running client, or undefined after telling the user which is missing. */
  function editorAndClient(): { editor: vscode.TextEditor; client: LanguageClient } | undefined {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined) {
      void vscode.window.showInformationMessage("Open a file in the editor first.");
      return undefined;
    }
    const client = supervisor.runningClient();
    if (client === undefined) {
      void vscode.window.showWarningMessage("The osslsp server is not running: see osslsp: Show Log.");
      return undefined;
    }
    return { editor, client };
  }

  function executeOnServer(
    client: LanguageClient,
    command: string,
    args: unknown[],
    token?: vscode.CancellationToken,
  ): Promise<unknown> {
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }, token);
  }

  function register(id: string, what: string, handler: () => Promise<unknown>): void {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async () => {
        try {
          await handler();
        } catch (error) {
          output.appendLine(`${what} failed: ${errorText(error)}`);
          void vscode.window.showErrorMessage(`osslsp: ${what} failed: ${errorText(error)}`);
        }
      }),
    );
  }

  register("osslsp.explainSelection", "Explain selection", async () => {
    const target = editorAndClient();
    if (target === undefined) {
      return;
    }
    const { editor, client } = target;
    if (editor.selection.isEmpty) {
      void vscode.window.showInformationMessage("Select the code to explain first.");
      return;
    }
    const uri = client.code2ProtocolConverter.asUri(editor.document.uri);
    const range = client.code2ProtocolConverter.asRange(editor.selection);
    const cancel = new vscode.CancellationTokenSource();
    const finished = explanations.requests.begin(explanationKey(uri, range), () => cancel.cancel());
    explanations.show(uri, range, "", false);
    try {
      await executeOnServer(client, "osslsp.explain", [uri, range], cancel.token);
    } catch (error) {
      if (cancel.token.isCancellationRequested) {
        return; // the user closed the panel
      }
      explanations.show(uri, range, `The explanation failed: ${errorText(error)}`, true);
      throw error;
    } finally {
      finished();
      cancel.dispose();
    }
  });

  register("osslsp.generateFromDocstring", "Generate function from docstring", async () => {
    const target = editorAndClient();
    if (target === undefined) {
      return;
    }
    const { editor, client } = target;
    const uri = client.code2ProtocolConverter.asUri(editor.document.uri);
    const position = client.code2ProtocolConverter.asPosition(editor.selection.active);
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: "osslsp: generating the function…" },
      () => executeOnServer(client, "osslsp.generate", [uri, position]),
    );
  });

  register("osslsp.showPromptAtCursor", "Show prompt for cursor", async () => {
    const target = editorAndClient();
    if (target === undefined) {
      return;
    }
    const { editor, client } = target;
    const cursor = editor.selection.active;
    const answer = await executeOnServer(client, "osslsp.showPrompt", [
      client.code2ProtocolConverter.asUri(editor.document.uri),
      client.code2ProtocolConverter.asPosition(cursor),
    ]);
    const result = parseShowPromptResult(answer);
    if (result === undefined) {
      throw new Error(`the server answered ${JSON.stringify(answer)} instead of {prompt, promptTokens}`);
    }
    const where = `${vscode.workspace.asRelativePath(editor.document.uri)}:${cursor.line + 1}:${cursor.character + 1}`;
    const document = await vscode.workspace.openTextDocument({ language: "markdown", content: promptDocument(result, where) });
    await vscode.window.showTextDocument(document, { preview: false, viewColumn: vscode.ViewColumn.Beside });
  });

  register("osslsp.restartServer", "Restart server", () => supervisor.restart());

  register("osslsp.showLog", "Show log", async () => output.show(true));
}

let supervisor: ServerSupervisor | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("osslsp", { log: true });
  const statusBar = new StatusBar();
  const explanations = new ExplanationPanel();
  supervisor = new ServerSupervisor(output, statusBar, explanations);
  context.subscriptions.push(output, statusBar, explanations, supervisor);
  registerCommands(context, output, supervisor, explanations);
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      // Other osslsp settings reach the running server through didChangeConfiguration.
      if (RESTART_SETTING_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`))) {
        output.appendLine("The server's command line changed: restarting it.");
        void supervisor?.restart();
      }
    }),
  );
  // Not awaited: activation need not wait for the server, the status bar shows its progress.
  void supervisor.start();
}

export async function deactivate(): Promise<void> {
  await supervisor?.stop();
  supervisor = undefined;
}
