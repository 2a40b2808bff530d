import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { codeFence, parseShowPromptResult, promptDocument } from "../prompt";

describe("parseShowPromptResult", () => {
  it("accepts {prompt, promptTokens}", () => {
    assert.deepEqual(parseShowPromptResult({ prompt: "p", promptTokens: 3 }), { prompt: "p", promptTokens: 3 });
  });

  it("rejects anything else", () => {
    for (const result of [null, undefined, "p", { prompt: "p" }, { prompt: 1, promptTokens: 3 }]) {
      assert.equal(parseShowPromptResult(result), undefined, JSON.stringify(result));
    }
  });
});

describe("codeFence", () => {
  it("is three backticks for text without any", () => {
    assert.equal(codeFence("def f(): pass"), "```");
  });

  it("is longer than the longest run of backticks in the text", () => {
    assert.equal(codeFence("```python\nx\n```"), "````");
    assert.equal(codeFence("a ````` b ` c"), "``````");
  });
});

describe("promptDocument", () => {
  it("holds the token count and the prompt verbatim inside a fence it cannot close", () => {
    const prompt = "<|start|>system<|message|>Reasoning: low\n```python\ndef add(a, b):\n```\n<|end|>";
    const document = promptDocument({ prompt, promptTokens: 1234 }, "src/a.py:3:5");
    assert.match(document, /^# osslsp prompt for src\/a.py:3:5\n/);
    assert.match(document, /\n1234 tokens\.\n/);
    assert.ok(document.includes(`\n\`\`\`\`text\n${prompt}\n\`\`\`\`\n`));
  });
});
