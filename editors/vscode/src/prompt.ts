/** The result of `osslsp.showPrompt`, shown to the user as a Markdown document. */

export interface ShowPromptResult {
  prompt: string;
  promptTokens: number;
}

/** The command's result, or undefined when the server answered something else. */
export function parseShowPromptResult(result: unknown): ShowPromptResult | undefined {
  if (typeof result !== "object" || result === null) {
    return undefined;
  }
  const { prompt, promptTokens } = result as Record<string, unknown>;
  if (typeof prompt !== "string" || typeof promptTokens !== "number") {
    return undefined;
  }
  return { prompt, promptTokens };
}

/** A backtick fence longer than any run of backticks in `text`, so that `text` cannot close it. */
export function codeFence(text: string): string {
  const longestRun = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  return "`".repeat(Math.max(3, longestRun + 1));
}

/** The Markdown document: a heading with the prompt's size, then the prompt verbatim. */
export function promptDocument(result: ShowPromptResult, where: string): string {
  const fence = codeFence(result.prompt);
  return [
    `# osslsp prompt for ${where}`,
    "",
    `${result.promptTokens} tokens.`,
    "",
    `${fence}text`,
    result.prompt,
    fence,
    "",
  ].join("\n");
}
