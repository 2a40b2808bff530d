"""Extraction per language on real-looking code."""

from __future__ import annotations

from osslsp.index.extract import Definition, extract


def _by_name(language: str, source: str) -> dict[str, list[Definition]]:
    found: dict[str, list[Definition]] = {}
    for definition in extract(language, source.encode()).definitions:
        found.setdefault(definition.name, []).append(definition)
    return found


PYTHON = '''
import os.path as osp
from ..core import Engine, Config as Cfg
from . import helpers
from .models import *

MAX_RETRIES = 3

@dataclass(frozen=True)
class Order(Base):
    """An order placed by a customer."""

    total: int = 0

    def __init__(self, items: list[str],
                 customer: str | None = None) -> None:
        self.items = items

    @property
    def size(self) -> int:
        """How many items."""
        return len(self.items)

    class Line:
        def price(self) -> float: ...

@overload
def parse(value: str) -> int: ...
@overload
def parse(value: bytes) -> int: ...
def parse(value):
    return int(value)
'''


def test_python_definitions_signatures_and_scopes() -> None:
    found = _by_name("python", PYTHON)
    order = found["Order"][0]
    assert (order.kind, order.scope, order.doc) == ("class", "", "An order placed by a customer.")
    assert order.signature == "@dataclass(frozen=True)\nclass Order(Base)"
    init = found["__init__"][0]
    assert init.kind == "method" and init.scope == "Order"
    assert init.signature == ("def __init__(self, items: list[str],\n"
                              "             customer: str | None = None) -> None")
    assert found["size"][0].signature.startswith("@property\ndef size(self) -> int")
    assert found["size"][0].doc == "How many items."
    assert found["price"][0].scope == "Order.Line"
    assert found["Line"][0].scope == "Order"
    assert [d.line for d in found["parse"]] == [27, 29, 31]
    assert found["MAX_RETRIES"][0].kind == "constant"
    assert found["total"][0].scope == "Order"


def test_python_imports() -> None:
    imports = extract("python", PYTHON.encode()).imports
    rows = {(i.module, i.name, i.bound, i.level, i.wildcard) for i in imports}
    assert rows == {("os.path", "", "osp", 0, False), ("core", "Engine", "Engine", 2, False),
                    ("core", "Config", "Cfg", 2, False), ("", "helpers", "helpers", 1, False),
                    ("models", "", "", 1, True)}


TYPESCRIPT = '''import { fetchJson, Opts as O } from "./http";
import * as utils from "../utils";
import Widget from "./widget";
/** Renders a widget. */
export default function render<T>(props: Props<T>): string { return ""; }
export class Client<T> extends Base {
  /** Fetch one. */
  fetchOne(id: string): Promise<T> { return fetchJson(id); }
  constructor(private url: string) { super(); }
}
export interface Props<T> { value: T }
export const helper = (a: number): number => a + 1;
export type Id = string;
function overload(a: string): void;
function overload(a: number): void;
function overload(a: any) {}
'''


def test_typescript_definitions() -> None:
    found = _by_name("typescript", TYPESCRIPT)
    render = found["render"][0]
    assert render.signature == "export default function render<T>(props: Props<T>): string"
    assert render.doc == "Renders a widget."
    assert found["fetchOne"][0].signature == "fetchOne(id: string): Promise<T>"
    assert found["fetchOne"][0].scope == "Client" and found["fetchOne"][0].kind == "method"
    assert found["helper"][0].kind == "function"
    assert found["helper"][0].signature == "export const helper = (a: number): number"
    assert found["Props"][0].kind == "type" and found["Id"][0].kind == "type"
    assert len(found["overload"]) == 3


def test_typescript_and_tsx_imports() -> None:
    for language in ("typescript", "typescriptreact"):
        imports = extract(language, TYPESCRIPT.encode()).imports
        rows = {(i.module, i.name, i.bound) for i in imports}
        assert rows == {("./http", "fetchJson", "fetchJson"), ("./http", "Opts", "O"),
                        ("../utils", "", "utils"), ("./widget", "", "Widget")}


def test_javascript_require_and_class_methods() -> None:
    source = ('const { join } = require("path");\nconst db = require("./db");\n'
              "class Repo {\n  find(id) { return db.get(id); }\n}\nmodule.exports = Repo;\n")
    summary = extract("javascript", source.encode())
    assert {(i.module, i.bound) for i in summary.imports} == {("./db", "db")}
    find = [d for d in summary.definitions if d.name == "find"][0]
    assert (find.scope, find.kind, find.signature) == ("Repo", "method", "find(id)")


def test_go_receivers_and_imports() -> None:
    source = '''package store
import (
  "fmt"
  db "github.com/acme/app/internal/db"
)
// Store keeps items.
type Store struct { items map[string]int }
// Get returns an item.
func (s *Store) Get(key string) (int, error) { return 0, nil }
func New() *Store { return nil }
const Max = 10
'''
    found = _by_name("go", source)
    get = found["Get"][0]
    assert (get.kind, get.scope, get.doc) == ("method", "Store", "Get returns an item.")
    assert get.signature == "func (s *Store) Get(key string) (int, error)"
    assert found["Store"][0].doc == "Store keeps items."
    assert found["New"][0].scope == "" and found["Max"][0].kind == "constant"
    imports = extract("go", source.encode()).imports
    assert {(i.module, i.bound) for i in imports} == {
        ("fmt", "fmt"), ("github.com/acme/app/internal/db", "db")}


def test_rust_impl_blocks_traits_and_uses() -> None:
    source = '''use crate::model::{User, Role as R};
/// A repository.
pub struct Repo<T> { items: Vec<T> }
impl<T: Clone> Repo<T> {
    /// Make one.
    pub fn new() -> Self { Repo { items: vec![] } }
    pub fn get(&self, i: usize) -> Option<&T> { self.items.get(i) }
}
pub trait Store { fn load(&self) -> u8; }
'''
    found = _by_name("rust", source)
    assert found["Repo"][0].doc == "A repository." and "Repo" in found
    new = found["new"][0]
    assert (new.kind, new.scope, new.doc, new.signature) == (
        "method", "Repo", "Make one.", "pub fn new() -> Self")
    assert found["get"][0].signature == "pub fn get(&self, i: usize) -> Option<&T>"
    assert found["load"][0].scope == "Store"
    imports = extract("rust", source.encode()).imports
    assert {(i.module, i.name, i.bound) for i in imports} == {
        ("crate::model", "User", "User"), ("crate::model", "Role", "R")}


def test_java_nested_classes_constructors_and_imports() -> None:
    source = '''package com.acme;
import com.acme.model.User;
import java.util.*;
/** Service doc. */
public class Service<T extends User> {
  /** Find. */
  public User find(String id) { return null; }
  public Service(int x) {}
  static class Inner { void run() {} }
}
'''
    found = _by_name("java", source)
    assert found["Service"][0].doc == "Service doc."
    assert found["Service"][1].kind == "method"  # the constructor
    assert found["find"][0].signature == "public User find(String id)"
    assert found["run"][0].scope == "Service.Inner"
    imports = extract("java", source.encode()).imports
    assert {(i.module, i.name, i.wildcard) for i in imports} == {
        ("com.acme.model", "User", False), ("java.util", "", True)}


def test_c_and_cpp() -> None:
    c_source = ('#include "util.h"\n#include <stdio.h>\n/* Adds numbers. */\n'
                "int add(int a, int b) { return a + b; }\nstatic const char *name(void);\n"
                "typedef struct point { int x; } point_t;\n#define MAX 3\n")
    found = _by_name("c", c_source)
    assert found["add"][0].signature == "int add(int a, int b)"
    assert found["add"][0].doc == "Adds numbers."
    assert found["name"][0].kind == "function" and found["point_t"][0].kind == "type"
    assert {i.module for i in extract("c", c_source.encode()).imports} == {"util.h", "stdio.h"}
    cpp_source = ("namespace geo {\n/// A shape.\nclass Shape {\n public:\n"
                  "  virtual double area() const;\n  Shape(int sides);\n};\n"
                  "template <typename T> T clamp(T v, T lo, T hi) { return v; }\n}\n"
                  "double geo::Shape::area() const { return 0; }\n")
    found = _by_name("cpp", cpp_source)
    assert found["Shape"][0].doc == "A shape." and found["Shape"][0].scope == "geo"
    assert [d.scope for d in found["area"]] == ["geo.Shape", "geo.Shape"]
    assert found["clamp"][0].signature.startswith("template <typename T> T clamp(T v")


def test_broken_code_gives_what_parses() -> None:
    found = _by_name("python", "def ok(a):\n    return a\n\ndef broken(:\n")
    assert "ok" in found
