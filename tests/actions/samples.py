"""One stub and one function with a body per language; MARK is in each stub's documentation,
BODY in each real body. The stubs use every placeholder the issue names."""

from __future__ import annotations

STUBS: dict[str, tuple[str, str]] = {
    "python": ("py", 'def add(a, b):\n    """Return the sum; MARK."""\n    pass\n'),
    "javascript": ("js", "/**\n * Return the sum; MARK.\n * @param {number} a\n */\nfunction add(a, b) {\n  // TODO\n}\n"),
    "typescript": ("ts", "/** Return the sum; MARK. */\nexport const add = (a: number, b: number): number => {\n"
                         "  throw new Error(\"not implemented\");\n};\n"),
    "go": ("go", "package sums\n\n// add returns the sum; MARK.\nfunc add(a int, b int) int {\n"
                 "\tpanic(\"not implemented\")\n}\n"),
    "rust": ("rs", "/// Return the sum; MARK.\nfn add(a: i32, b: i32) -> i32 {\n    todo!()\n}\n"),
    "java": ("java", "class Sums {\n  /** Return the sum; MARK. */\n  int add(int a, int b) {\n"
                     "    throw new UnsupportedOperationException();\n  }\n}\n"),
    "c": ("c", "/* Return the sum; MARK. */\nint add(int a, int b);\n"),
    "cpp": ("cpp", "/// Return the sum; MARK.\nint add(int a, int b) {\n  // TODO: write it\n}\n"),
    "ruby": ("rb", "# Return the sum; MARK.\ndef add(a, b)\n  raise NotImplementedError\nend\n"),
}

BODIED: dict[str, tuple[str, str]] = {
    "python": ("py", 'def sub(a, b):\n    """Return the difference."""\n    return a - b  # BODY\n'),
    "javascript": ("js", "/** Return the difference. */\nfunction sub(a, b) {\n  return a - b; // BODY\n}\n"),
    "typescript": ("ts", "/** Return the difference. */\nfunction sub(a: number, b: number): number {\n"
                         "  return a - b; // BODY\n}\n"),
    "go": ("go", "// sub returns the difference.\nfunc sub(a int, b int) int {\n\treturn a - b // BODY\n}\n"),
    "rust": ("rs", "/// Return the difference.\nfn sub(a: i32, b: i32) -> i32 {\n    a - b // BODY\n}\n"),
    "java": ("java", "class Diffs {\n  /** Return the difference. */\n  int sub(int a, int b) {\n"
                     "    return a - b; // BODY\n  }\n}\n"),
    "c": ("c", "/* Return the difference. */\nint sub(int a, int b) {\n  return a - b; /* BODY */\n}\n"),
    "cpp": ("cpp", "/// Return the difference.\nint sub(int a, int b) {\n  return a - b;  // BODY\n}\n"),
    "ruby": ("rb", "# Return the difference.\ndef sub(a, b)\n  a - b # BODY\nend\n"),
}
