"""How long checking a 5,000-line file against its bundled guide takes (target: under 100 ms).

Run: python benchmarks/style_speed.py [--lines 5000] [--repeat 15]
The file is the compliant sample of each guide repeated (symbols renamed per copy) to the length
asked for, so every rule runs over real code and nothing is found. Also times one completion's
enforcement at the end of such a file.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from osslsp.languages import parser
from osslsp.style import check_text, enforce_completion, resolve_guide

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "style" / "samples"
CASES = [("python", "pep8_good.py"), ("typescript", "ts_good.ts"), ("go", "go_good.go"),
         ("rust", "rust_good.rs"), ("java", "java_good.java"), ("cpp", "cpp_good.cc")]


def big_file(sample: str, lines: int) -> str:
    """The sample's text repeated to `lines` lines, each copy's top-level names made distinct."""
    text = (SAMPLES / sample).read_text()
    copies = []
    for number in range(lines // text.count("\n") + 1):
        copies.append(re.sub(r"\b(FileCache|total_size|Polygon|PageCache|Circle|Describe|describe|FileCache|"
                             r"formatSize|sumSizes|TotalCorners)\b", rf"\g<1>{number}", text))
    return "\n".join("".join(copies).split("\n")[:lines]) + "\n"


def time_ms(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of an action (CPU time is what other load cannot inflate)."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--lines", type=int, default=5000)
    arguments.add_argument("--repeat", type=int, default=15)
    options = arguments.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; milliseconds, median of "
          f"{options.repeat}, wall / CPU")
    print(f"{'language':<12}{'lines':>6}{'findings':>9}{'parse only':>16}{'check':>16}{'enforce':>16}")
    for language, sample in CASES:
        guide, _ = resolve_guide(language, None)
        text = big_file(sample, options.lines)
        findings = len(check_text(text, language, guide))
        data = text.encode()
        parse = time_ms(lambda: parser(language).parse(data), options.repeat)
        check = time_ms(lambda: check_text(text, language, guide), options.repeat)
        cut = text.rfind("\n", 0, len(text) - 200)
        enforce = time_ms(lambda: enforce_completion(text[:cut + 1], text[cut + 1:len(text) - 100],
                                                     text[len(text) - 100:], language, guide), options.repeat)
        cells = "".join(f"{wall:>9.1f} /{cpu:>5.1f}" for wall, cpu in (parse, check, enforce))
        print(f"{language:<12}{text.count(chr(10)):>6}{findings:>9}{cells}")


if __name__ == "__main__":
    main()
