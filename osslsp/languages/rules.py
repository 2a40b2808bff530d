"""Rules several languages share: imports as file paths (JavaScript, C) or dotted names (Java),
the "not implemented" throw of brace languages."""

from __future__ import annotations

import posixpath

from osslsp.languages.base import ImportRule, Resolver

# A statement that throws "not implemented" or "todo": a stub's placeholder body.
BRACE_THROW = r"throw\s+(new\s+)?[\w.:]+\s*\(.*(?i:implement|todo).*\)\s*;?"


def file_paths(*, local_first: bool) -> ImportRule:
    """Modules written as file paths: `./util` (or, with `local_first`, any path) from the
    importer's directory first; other paths anywhere in the workspace, nearest first."""

    def resolve(resolver: Resolver, importer: str, module: str, level: int) -> list[str]:
        relative = module.startswith(".") or level > 0
        if relative or local_first:
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(importer), module))
            local = resolver.exact(resolver.stem_parts(joined) if "." in posixpath.basename(joined)
                                   else tuple(joined.split("/")))
            if local or relative:
                return local
        return resolver.nearest(resolver.stem_parts(module.lstrip("@~/")), importer)

    return resolve


def dotted(resolver: Resolver, importer: str, module: str, level: int) -> list[str]:
    """`a.b.C` names the file a/b/C.* anywhere in the workspace, nearest first."""
    return resolver.nearest(tuple(module.split(".")), importer)
