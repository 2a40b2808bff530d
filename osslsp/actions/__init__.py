"""Code actions: generate a function from its docstring, explain a selection.

Pure of pygls: the language server (`osslsp.features.code_actions`, `osslsp.features.explain`) and
the CLI (`osslsp.cli.actions`) are thin adapters over `generate_body` and `explain_stream`.
"""
