/**
 * Explanations: parsing `osslsp/explanation` notifications and rendering their Markdown into the
 * side panel's HTML.
 *
 * The Markdown comes from a language model reading the user's code, so it is untrusted: raw HTML
 * is escaped (markdown-it with `html: false`), link targets other than http(s)/mailto are dropped,
 * and the page's Content-Security-Policy allows nothing but its own script and style (by nonce):
 * no other script, no network, no images.
 */

import { randomBytes } from "node:crypto";
import * as path from "node:path";
import MarkdownIt from "markdown-it";

/** An LSP range (0-based lines and UTF-16 characters). */
export interface Range {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

/** `params` of `osslsp/explanation`: the whole Markdown so far, and whether it is finished. */
export interface Explanation {
  uri: string;
  range: Range;
  markdown: string;
  done: boolean;
}

function isPosition(value: unknown): value is Range["start"] {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const { line, character } = value as Record<string, unknown>;
  return Number.isInteger(line) && Number.isInteger(character);
}

function isRange(value: unknown): value is Range {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const { start, end } = value as Record<string, unknown>;
  return isPosition(start) && isPosition(end);
}

/** `params` of an `osslsp/explanation` notification, or undefined when they are malformed. */
export function parseExplanation(params: unknown): Explanation | undefined {
  if (typeof params !== "object" || params === null) {
    return undefined;
  }
  const { uri, range, markdown, done } = params as Record<string, unknown>;
  if (typeof uri !== "string" || !isRange(range) || typeof markdown !== "string" || typeof done !== "boolean") {
    return undefined;
  }
  return { uri, range, markdown, done };
}

/** Identifies one explanation request: notifications for another one go to a new page. */
export function explanationKey(uri: string, range: Range): string {
  return `${uri}#${range.start.line}:${range.start.character}-${range.end.line}:${range.end.character}`;
}

/**
 * The explanation requests the panel was opened for. Closing the panel cancels those still
 * running, so that the server stops the model at its next step instead of writing on for nobody,
 * and drops their late notifications, which would open the panel again.
 */
export class ExplanationRequests {
  private readonly running = new Map<number, { key: string; cancel: () => void }>();
  private readonly dropped = new Set<string>();
  private next = 0;

  /** A request for the explanation `key` starts; `cancel` cancels it. Call what it returns when
   * the request ends. */
  begin(key: string, cancel: () => void): () => void {
    const id = this.next++;
    this.dropped.delete(key);
    this.running.set(id, { key, cancel });
    return () => {
      this.running.delete(id);
    };
  }

  /** Whether a notification for the explanation `key` belongs in the panel. */
  shows(key: string): boolean {
    return !this.dropped.has(key);
  }

  /** The panel was closed: cancel the requests still running; returns how many there were. */
  panelClosed(): number {
    const cancelled = [...this.running.values()];
    this.running.clear();
    for (const { key, cancel } of cancelled) {
      this.dropped.add(key);
      cancel();
    }
    return cancelled.length;
  }
}

/** `main.py:3-7` (1-based lines) for the panel's title. */
export function explanationTitle(uri: string, range: Range): string {
  const name = path.posix.basename(decodeURIComponent(uri.replace(/[?#].*$/, ""))) || uri;
  const first = range.start.line + 1;
  // A selection ending at column 0 does not include that line.
  const last = range.end.character === 0 && range.end.line > range.start.line ? range.end.line : range.end.line + 1;
  return first === last ? `${name}:${first}` : `${name}:${first}-${last}`;
}

const SAFE_LINK = /^(https?:|mailto:|#)/i;

function createRenderer(): MarkdownIt {
  const renderer = new MarkdownIt({ html: false, linkify: false, typographer: false });
  // markdown-it already refuses javascript:, vbscript:, file: and most data: URLs; accept only
  // web links and in-page anchors, since a relative or custom-scheme link means nothing here.
  renderer.validateLink = (url: string): boolean => SAFE_LINK.test(url.trim());
  return renderer;
}

const renderer = createRenderer();

/** Markdown to HTML that is safe to put into the page (raw HTML is shown as text). */
export function renderMarkdown(markdown: string): string {
  return renderer.render(markdown);
}

/** Escapes text for an HTML text node or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** A fresh nonce for the page's one script and style sheet. */
export function makeNonce(): string {
  return randomBytes(16).toString("base64");
}

/** What the page shows; sent to it as a message on each update. */
export interface ExplanationContent {
  /** Rendered HTML of the explanation so far. */
  html: string;
  /** Line under the title: still explaining, or done. */
  state: string;
}

/** The page's content for one explanation (rendered Markdown and a progress line). */
export function explanationContent(markdown: string, done: boolean): ExplanationContent {
  const state = done ? "" : markdown ? "Explaining…" : "Waiting for the model…";
  return { html: renderMarkdown(markdown), state };
}

/** The Content-Security-Policy of the page: its own script and style sheet, nothing else. */
export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `style-src 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
  ].join("; ");
}

const PAGE_STYLE = `
body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); padding: 0 1em 2em; line-height: 1.5; }
h1.title { font-size: 1.1em; margin-bottom: 0; }
#state { color: var(--vscode-descriptionForeground); font-style: italic; min-height: 1.5em; }
pre { background: var(--vscode-textCodeBlock-background); padding: 0.6em; overflow-x: auto; }
code { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); }
a { color: var(--vscode-textLink-foreground); }
`;

// Replaces the content on each update instead of reloading the page, which would lose the
// reader's scroll position while the explanation streams in. The HTML was sanitised above.
const PAGE_SCRIPT = `
window.addEventListener("message", (event) => {
  const { html, state } = event.data;
  document.getElementById("content").innerHTML = html;
  document.getElementById("state").textContent = state;
});
`;

/** The whole page, with `content` already in it (so it is right even before any message). */
export function explanationPage(title: string, content: ExplanationContent, nonce: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(contentSecurityPolicy(nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">${PAGE_STYLE}</style>
</head>
<body>
<h1 class="title">${escapeHtml(title)}</h1>
<p id="state">${escapeHtml(content.state)}</p>
<main id="content">${content.html}</main>
<script nonce="${nonce}">${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
