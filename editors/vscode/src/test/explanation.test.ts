import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  contentSecurityPolicy,
  escapeHtml,
  explanationContent,
  explanationKey,
  explanationPage,
  ExplanationRequests,
  explanationTitle,
  makeNonce,
  parseExplanation,
  renderMarkdown,
} from "../explanation";

const range = { start: { line: 2, character: 0 }, end: { line: 6, character: 4 } };

describe("parseExplanation", () => {
  it("accepts the protocol's params", () => {
    const params = { uri: "file:///w/a.py", range, markdown: "# Hi", done: false };
    assert.deepEqual(parseExplanation(params), params);
  });

  it("rejects malformed params", () => {
    const good = { uri: "file:///w/a.py", range, markdown: "", done: true };
    const bad = [
      null,
      { ...good, uri: 3 },
      { ...good, markdown: undefined },
      { ...good, done: "yes" },
      { ...good, range: { start: { line: 0, character: 0 } } },
      { ...good, range: { start: { line: 0.5, character: 0 }, end: { line: 1, character: 0 } } },
    ];
    for (const params of bad) {
      assert.equal(parseExplanation(params), undefined, JSON.stringify(params));
    }
  });
});

describe("explanationTitle and explanationKey", () => {
  it("names the file and the 1-based lines", () => {
    assert.equal(explanationTitle("file:///w/src/main%20file.py", range), "main file.py:3-7");
  });

  it("leaves out a last line the selection only touches at column 0", () => {
    const wholeLines = { start: { line: 2, character: 0 }, end: { line: 5, character: 0 } };
    assert.equal(explanationTitle("file:///w/a.py", wholeLines), "a.py:3-5");
    const oneLine = { start: { line: 4, character: 1 }, end: { line: 4, character: 9 } };
    assert.equal(explanationTitle("untitled:Untitled-1", oneLine), "untitled:Untitled-1:5");
  });

  it("tells different requests apart", () => {
    const other = { start: { line: 2, character: 0 }, end: { line: 6, character: 5 } };
    assert.notEqual(explanationKey("file:///a.py", range), explanationKey("file:///a.py", other));
    assert.notEqual(explanationKey("file:///a.py", range), explanationKey("file:///b.py", range));
    assert.equal(explanationKey("file:///a.py", range), explanationKey("file:///a.py", { ...range }));
  });
});

describe("renderMarkdown", () => {
  it("renders Markdown", () => {
    const html = renderMarkdown("# Title\n\nSome `code` and **bold**.\n\n```python\nx = 1 < 2\n```\n");
    assert.match(html, /<h1>Title<\/h1>/);
    assert.match(html, /<code>code<\/code>/);
    assert.match(html, /<strong>bold<\/strong>/);
    assert.match(html, /<pre><code class="language-python">x = 1 &lt; 2\n<\/code><\/pre>/);
  });

  it("shows raw HTML as text", () => {
    const html = renderMarkdown('<script>alert(1)</script>\n\n<img src=x onerror="alert(2)">');
    assert.doesNotMatch(html, /<script/);
    assert.doesNotMatch(html, /<img/);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  });

  it("keeps web links and drops script, file and command links", () => {
    const html = renderMarkdown(
      "[web](https://example.com) [js](javascript:alert(1)) [file](file:///etc/passwd) [cmd](command:workbench.action.quit)",
    );
    assert.match(html, /<a href="https:\/\/example.com">web<\/a>/);
    assert.doesNotMatch(html, /href="javascript/);
    assert.doesNotMatch(html, /href="file/);
    assert.doesNotMatch(html, /href="command/);
  });

  it("drops images", () => {
    assert.doesNotMatch(renderMarkdown("![x](data:image/svg+xml;base64,PHN2Zz4=)"), /<img/);
  });
});

describe("explanationContent", () => {
  it("says whether the explanation is still coming", () => {
    assert.equal(explanationContent("", false).state, "Waiting for the model…");
    assert.equal(explanationContent("Half", false).state, "Explaining…");
    assert.equal(explanationContent("Whole", true).state, "");
    assert.match(explanationContent("Whole", true).html, /<p>Whole<\/p>/);
  });
});

describe("explanationPage", () => {
  it("allows only its own nonce'd script and style", () => {
    const nonce = makeNonce();
    const csp = contentSecurityPolicy(nonce);
    assert.match(csp, /^default-src 'none'; /);
    assert.match(csp, new RegExp(`script-src 'nonce-${nonce.replace(/[+/=]/g, "\\$&")}'`));
    assert.doesNotMatch(csp, /unsafe|\*|https?:/);

    const page = explanationPage("a.py:3-7", explanationContent("Hello", false), nonce);
    assert.ok(page.includes(`content="${escapeHtml(csp)}"`));
    const scripts = page.match(/<script[^>]*>/g) ?? [];
    assert.deepEqual(scripts, [`<script nonce="${nonce}">`]);
    assert.match(page, /<main id="content"><p>Hello<\/p>\n<\/main>/);
  });

  it("escapes the title", () => {
    const page = explanationPage('<img src=x onerror="alert(1)">.py:1', explanationContent("", true), makeNonce());
    assert.doesNotMatch(page, /<img/);
    assert.match(page, /&lt;img src=x onerror=&quot;alert\(1\)&quot;&gt;/);
  });

  it("uses a fresh nonce each time", () => {
    assert.notEqual(makeNonce(), makeNonce());
  });
});

describe("ExplanationRequests", () => {
  it("closing the panel cancels the running requests and drops their late notifications", () => {
    const requests = new ExplanationRequests();
    const cancelled: string[] = [];
    requests.begin("a", () => cancelled.push("a"));
    const finishedB = requests.begin("b", () => cancelled.push("b"));
    finishedB();
    assert.equal(requests.panelClosed(), 1);
    assert.deepEqual(cancelled, ["a"]);
    assert.equal(requests.shows("a"), false);
    assert.equal(requests.shows("b"), true);
    assert.equal(requests.panelClosed(), 0, "a request is cancelled once");
  });

  it("shows an explanation asked for again after its panel was closed", () => {
    const requests = new ExplanationRequests();
    requests.begin("a", () => undefined);
    requests.panelClosed();
    requests.begin("a", () => undefined);
    assert.equal(requests.shows("a"), true);
  });
});
