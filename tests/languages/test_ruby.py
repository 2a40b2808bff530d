"""Ruby, the language added as one module (`osslsp/languages/ruby.py`) and one bundled guide:
indexing, cross-file context in a completion prompt, the style check and "Generate function"."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from osslsp.actions.generate import build_generate_prompt
from osslsp.actions.stubs import body_from_answer, find_stub
from osslsp.actions.validate import check_body
from osslsp.assistant import Assistant
from osslsp.backends import UnusableBackend
from osslsp.index import WorkspaceIndex
from osslsp.settings import Settings
from osslsp.style import check_text, resolve_guide

FILES = {
    "lib/shop/pricing.rb": (
        "module Shop\n"
        "  # Prices and discounts.\n"
        "  module Pricing\n"
        "    # The amount after the seasonal discount, rounded to cents.\n"
        "    def self.discounted(amount, rate = 0.1)\n"
        "      (amount * (1 - rate)).round(2)\n"
        "    end\n"
        "  end\n"
        "end\n"),
    "lib/shop/cart.rb": (
        "require_relative 'pricing'\n\n"
        "module Shop\n"
        "  # A basket of items a customer is about to buy.\n"
        "  class Cart\n"
        "    MAX_ITEMS = 50\n\n"
        "    # Starts an empty cart for its owner.\n"
        "    def initialize(owner, currency: 'EUR')\n"
        "      @owner = owner\n"
        "      @items = []\n"
        "    end\n\n"
        "    # Adds an item, refusing more than MAX_ITEMS.\n"
        "    def add_item(item, quantity = 1)\n"
        "      @items << [item, quantity]\n"
        "    end\n\n"
        "    # The total price after the Pricing discounts.\n"
        "    def total_price\n"
        "      raise NotImplementedError\n"
        "    end\n"
        "  end\n"
        "end\n"),
    "app.rb": "require 'shop/cart'\n\ncart = Shop::Cart.new('ana')\n",
}


@pytest.fixture()
def index(tmp_path: Path):
    """The workspace of FILES, indexed (into the test's own cache)."""
    for relative, text in FILES.items():
        (tmp_path / "ws" / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ws" / relative).write_text(text)
    with closing(WorkspaceIndex(tmp_path / "ws", cache_dir=tmp_path / "cache")) as built:
        built.refresh()
        yield built


@pytest.fixture()
def workspace(index: WorkspaceIndex) -> Path:
    return index.root


def _chars(text: str) -> int:
    return max(1, len(text) // 4)


def test_indexing_finds_definitions_with_their_scopes_and_doc_comments(index: WorkspaceIndex) -> None:
    assert index.stats().languages == {"ruby": 3}
    [add_item] = index.definitions_named("add_item")
    assert (add_item.path, add_item.line, add_item.kind, add_item.scope) == ("lib/shop/cart.rb", 15, "method",
                                                                          "Shop.Cart")
    assert add_item.signature == "def add_item(item, quantity = 1)"
    assert add_item.doc == "Adds an item, refusing more than MAX_ITEMS."
    [cart] = index.definitions_named("Cart")
    assert (cart.kind, cart.doc) == ("class", "A basket of items a customer is about to buy.")
    [discounted] = index.definitions_named("discounted")
    assert (discounted.kind, discounted.scope) == ("function", "Shop.Pricing")
    assert [d.kind for d in index.definitions_named("MAX_ITEMS")] == ["constant"]


def test_requires_resolve_to_workspace_files(index: WorkspaceIndex) -> None:
    resolver = index.resolver
    assert resolver.resolve("ruby", "app.rb", "shop/cart", 0) == ["lib/shop/cart.rb"]
    assert resolver.resolve("ruby", "lib/shop/cart.rb", "pricing", 1) == ["lib/shop/pricing.rb"]
    assert resolver.resolve("ruby", "app.rb", "json", 0) == []


def test_a_call_site_gets_the_callee_from_another_file(index: WorkspaceIndex, workspace: Path) -> None:
    text = FILES["app.rb"] + "cart.add_item("
    snippets = index.context_for(workspace / "app.rb", text, len(text), 2000, _chars)
    shown = "\n".join(f"{s.path}:{s.line} {s.reason}\n{s.text}" for s in snippets)
    assert "lib/shop/cart.rb:15 definition of add_item" in shown
    assert "# Adds an item, refusing more than MAX_ITEMS.\ndef add_item(item, quantity = 1)" in shown


def test_a_class_snippet_shows_its_constructor_first(index: WorkspaceIndex, workspace: Path) -> None:
    text = FILES["app.rb"] + "other = Shop::Cart.new("
    snippets = index.context_for(workspace / "app.rb", text, len(text), 2000, _chars)
    [cart] = [s.text for s in snippets if s.reason == "definition of Cart"]
    assert cart.split("\n")[:4] == ["# A basket of items a customer is about to buy.", "class Cart",
                                    "    # Starts an empty cart for its owner.",
                                    "    def initialize(owner, currency: 'EUR')"]


def test_a_completion_prompt_in_a_ruby_file_carries_the_cross_file_context(
        index: WorkspaceIndex, workspace: Path, tiny_dir) -> None:
    assistant = Assistant(Settings(model="tiny"), workspace, index=index)
    assistant.backend = UnusableBackend("no engine in this test", lambda state, message: None)
    prefix = FILES["app.rb"] + "puts Shop::Pricing.discounted("
    prompt = assistant.completion_prompt(assistant.cursor_at(workspace / "app.rb", prefix + ")\n", len(prefix)))
    assert "```ruby" in prompt.text
    assert "def self.discounted(amount, rate = 0.1)" in prompt.text
    assert "# The amount after the seasonal discount, rounded to cents." in prompt.text
    assert "Ruby Style Guide" in prompt.text


def test_the_bundled_guide_checks_ruby_and_spares_what_ruby_needs() -> None:
    guide, warnings = resolve_guide("ruby", None)
    assert (guide.name, warnings) == ("ruby", [])
    code = ("# Greets.\nclass Greeter\n  def hello?(name)\n    puts \"hi #{name}\\n\"\n    puts \"plain\"\n"
            "  end\n\n  private\n\n  def PrivateHelper\n  end\nend\n\nclass Undocumented\nend\n")
    findings = [(f.line, f.rule) for f in check_text(code, "ruby", guide)]
    # Interpolated and escaped strings need double quotes; `hello?` is a predicate's name.
    assert findings == [(5, "quote-style"), (10, "naming-method"), (14, "docs-required")]


def test_a_namespace_needs_no_doc_comment_but_a_module_with_methods_does() -> None:
    guide, _ = resolve_guide("ruby", None)
    code = ("module Shop\n  VERSION = '1'\n\n  # Items.\n  class Cart\n  end\nend\n\n"
            "module Util\n  def self.slug(text)\n    text.downcase\n  end\nend\n")
    assert [(f.line, f.rule) for f in check_text(code, "ruby", guide)] == [(9, "docs-required")]


def test_generate_function_finds_a_stub_builds_its_prompt_and_checks_a_body(
        index: WorkspaceIndex, workspace: Path, tiny_dir) -> None:
    path = workspace / "lib" / "shop" / "cart.rb"
    text = FILES["lib/shop/cart.rb"]
    stub = find_stub(text, "ruby", text.index("def total_price"))
    assert (stub.name, stub.signature, stub.doc) == ("total_price", "    def total_price".strip(),
                                                     "# The total price after the Pricing discounts.")
    assert stub.enclosing.startswith("class Cart")
    assert find_stub(text, "ruby", text.index("@items <<")) is None  # a method with code

    assistant = Assistant(Settings(model="tiny"), workspace, index=index)
    assistant.backend = UnusableBackend("no engine in this test", lambda state, message: None)
    prompt = build_generate_prompt(assistant, path, text, stub)
    assert [(snippet.path, snippet.reason) for snippet in prompt.definitions] == [
        ("lib/shop/pricing.rb", "definition of Pricing")]
    assert "def self.discounted(amount, rate = 0.1)" in prompt.definitions[0].text
    assert "```ruby" in prompt.messages[-1].content

    answer = "def total_price\n  Pricing.discounted(@items.sum { |item, count| item.price * count })\nend\n```"
    body = body_from_answer(answer, stub)
    guide, _ = resolve_guide("ruby", workspace)
    checked = check_body(text, stub, body, guide)
    assert checked.problems == []
    written = text[:stub.body_start] + checked.new_text + text[stub.body_end:]
    assert written.endswith("    def total_price\n      Pricing.discounted(@items.sum { |item, count| item.price * count })\n"
                            "    end\n  end\nend\n")
    assert check_body(text, stub, "if true", guide).new_text is None  # does not parse: `end` missing
    fixed = check_body(text, stub, 'label = "total"\nlabel', guide)
    assert fixed.new_text == "\n      label = 'total'\n      label\n    " and fixed.fixed
