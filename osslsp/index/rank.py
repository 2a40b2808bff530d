"""Ranking: which files matter (PageRank over the graph of files naming what others define),
which definitions a file's text relates to, and which identifiers are rare enough to find
similar code by."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from collections.abc import Collection, Sequence

from osslsp.index.extract import MIN_IDENTIFIER_CHARS
from osslsp.index.names import NameTable

PAGERANK_ITERATIONS = 20  # at most
PAGERANK_TOLERANCE = 1e-4  # total change of the ranks (which sum to 1) small enough to stop at
PAGERANK_DAMPING = 0.85
COMMON_NAME_FILES = 8  # a name defined in more files than this says nothing about relations
# The similar-code step looks up bodies by their rarest identifiers: terms in more bodies than
# this are too common to pick candidates by.
MAX_SIMILAR_TERM_BODIES = 200
MAX_SIMILAR_TERMS = 8


def pagerank_scores(count: int, sources: Sequence[int], targets: Sequence[int],
                    weights: Sequence[float]) -> list[float]:
    """PageRank of nodes 0..count-1, given weighted links (parallel arrays; repeats add up).

    An iteration is two passes in C over all links (about 110,000 in CPython's standard library):
    each link's flow, then `bincount` summing the flows into their targets.
    """
    # Imported here, not with this module: numpy takes 0.2 s to import and starts BLAS threads,
    # which extraction workers forked meanwhile need not copy.
    import numpy

    if not count:
        return []
    source = numpy.asarray(sources, dtype=numpy.intp)
    target = numpy.asarray(targets, dtype=numpy.intp)
    weight = numpy.asarray(weights, dtype=numpy.float64)
    totals = numpy.bincount(source, weight, minlength=count)
    share = PAGERANK_DAMPING * weight / totals[source]  # a node's shares sum to the damping
    dangling = totals == 0  # nodes linking nowhere give their rank to all
    rank = numpy.full(count, 1.0 / count)
    for _ in range(PAGERANK_ITERATIONS):
        base = (1.0 - PAGERANK_DAMPING + PAGERANK_DAMPING * rank[dangling].sum()) / count
        next_rank = base + numpy.bincount(target, rank[source] * share, minlength=count)
        change = numpy.abs(next_rank - rank).sum()
        rank = next_rank
        if change < PAGERANK_TOLERANCE:
            break
    return rank.tolist()


def _reference_graph(db: sqlite3.Connection) -> tuple[dict[str, set[int]], list[tuple[int, str]]]:
    """Top-level names with the ids of the files defining them, and each file's id and
    identifiers."""
    defined: dict[str, set[int]] = {}
    for name, file_id in db.execute(
            "SELECT name, file_id FROM defs WHERE scope = '' AND length(name) >= ?",
            (MIN_IDENTIFIER_CHARS,)):
        defined.setdefault(name, set()).add(file_id)
    return defined, db.execute("SELECT file_id, identifiers FROM file_identifiers").fetchall()


def file_ranks(db: sqlite3.Connection) -> dict[int, float]:
    """Each file's PageRank (by file id) in the graph of files naming what others define."""
    import numpy  # see `pagerank_scores`

    defined, identifier_rows = _reference_graph(db)
    file_ids = [file_id for file_id, _ in identifier_rows]
    number = {file_id: node for node, file_id in enumerate(file_ids)}
    # Only names defined in few files tell of relations; each gets a number, and its files
    # lie at definers[first[n]:first[n] + count[n]].
    telling = {name: index for index, name in enumerate(
        name for name, files in defined.items() if len(files) <= COMMON_NAME_FILES)}
    definer_lists = [[number[file_id] for file_id in defined[name]] for name in telling]
    count = numpy.array([len(files) for files in definer_lists], dtype=numpy.intp)
    first = numpy.cumsum(count) - count
    definers = numpy.array([node for files in definer_lists for node in files],
                           dtype=numpy.intp)
    # The names each file mentions (a set intersection in C per file), then every
    # (file, name) pair expanded to a link to each file defining the name, weighted by how
    # many do; a file's links to itself dropped.
    named: list[int] = []
    named_per_file: list[int] = []
    for _, identifiers in identifier_rows:
        found = telling.keys() & identifiers.split()
        named.extend(map(telling.__getitem__, found))
        named_per_file.append(len(found))
    name = numpy.array(named, dtype=numpy.intp)
    mentioner = numpy.repeat(numpy.arange(len(file_ids)), named_per_file)
    links = count[name]
    ends = numpy.cumsum(links)
    within = numpy.arange(ends[-1] if len(ends) else 0) - numpy.repeat(ends - links, links)
    sources = numpy.repeat(mentioner, links)
    targets = definers[numpy.repeat(first[name], links) + within]
    weights = numpy.repeat(1.0 / count[name], links)
    elsewhere = sources != targets
    return dict(zip(file_ids, pagerank_scores(len(file_ids), sources[elsewhere],
                                              targets[elsewhere], weights[elsewhere])))


def related_rowids(table: NameTable, path: str, names: Counter[str], most_names: int,
                   limit: int) -> list[int]:
    """Row ids of the top-level definitions of other files that a file names (`names`: how
    often it names each), best first: by the rank of their file, a name defined in many files
    counting for less. Only the file's `most_names` most frequent names are looked up."""
    scored: list[tuple[float, int]] = []
    for name, _ in names.most_common(most_names):
        refs = table.top_level.get(name)
        if not refs:
            continue
        others = len(refs) - sum(ref.path == path for ref in refs)
        for ref in refs:
            if ref.path != path:
                scored.append((table.ranks.get(ref.path, 0.0) / others, ref.rowid))
    scored.sort(reverse=True)
    return [rowid for _, rowid in scored[:limit]]


def rarest_terms(tokens: Collection[str], term_bodies: dict[str, int]) -> list[tuple[float, str]]:
    """The identifiers to look similar bodies up by, weighted by rarity (BM25 without term
    frequencies): only the rarest (at most MAX_SIMILAR_TERMS, each in at most
    MAX_SIMILAR_TERM_BODIES bodies), so each lookup in the inverted index reads a short list."""
    counted = sorted((count, term) for term in {token.lower() for token in tokens}  # folded
                     if 0 < (count := term_bodies.get(term, 0)) <= MAX_SIMILAR_TERM_BODIES)
    total = len(term_bodies) + 1
    return [(math.log(total / count), term) for count, term in counted[:MAX_SIMILAR_TERMS]]
