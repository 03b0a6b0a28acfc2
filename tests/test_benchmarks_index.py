"""benchmarks/ stays indexed: every results file is named in BENCHMARKS.md or benchmarks/HISTORY.md
(with what it holds), every script is a row of benchmarks/README.md, and the links between these
three files land on a heading that exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
DOCS = [ROOT / "BENCHMARKS.md", BENCH / "HISTORY.md"]
INDEX = BENCH / "README.md"
NOT_SCRIPTS = {"_common.py", "__init__.py"}


def named(name: str, text: str) -> bool:
    """Whether `name` occurs in `text` as a whole file name (not as the tail of a longer one)."""
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text) is not None


def orphan_results(results: Path, docs: list[str]) -> list[str]:
    """Results files named in none of the docs."""
    return sorted(f.name for f in results.iterdir() if f.is_file() and not any(named(f.name, d) for d in docs))


def unlisted_scripts(bench: Path, index: str) -> list[str]:
    """Scripts of benchmarks/ that the index does not name in a table row."""
    rows = "\n".join(line for line in index.splitlines() if line.startswith("|"))
    return sorted(p.name for p in bench.glob("*.py") if p.name not in NOT_SCRIPTS and not named(p.name, rows))


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.*)$", path.read_text(), re.M)}


def broken_links(path: Path) -> list[str]:
    """Links of `path` to a heading (in itself or another markdown file) that does not exist."""
    broken = []
    for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", path.read_text()):
        doc = (path.parent / target).resolve() if target else path
        if not doc.is_file() or anchor not in anchors(doc):
            broken.append(f"{target}#{anchor}")
    return broken


def test_every_results_file_is_referenced():
    docs = [d.read_text() for d in DOCS]
    orphans = orphan_results(BENCH / "results", docs)
    assert not orphans, f"results files named in neither BENCHMARKS.md nor benchmarks/HISTORY.md: {orphans}"


def test_every_script_is_in_the_index():
    missing = unlisted_scripts(BENCH, INDEX.read_text())
    assert not missing, f"scripts missing from benchmarks/README.md: {missing}"


def test_every_results_file_named_in_the_docs_exists():
    # the reverse direction: a renamed or deleted results file leaves no dangling name behind
    names = set()
    for doc in DOCS:
        names |= set(re.findall(r"benchmarks/results/([\w.+-]+\.json)", doc.read_text()))
    assert names, "BENCHMARKS.md names no results file"
    assert sorted(n for n in names if not (BENCH / "results" / n).is_file()) == []


def test_links_between_the_docs_land_on_a_heading():
    for doc in DOCS + [INDEX]:
        assert broken_links(doc) == [], doc.name


def test_the_checks_find_what_is_missing(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for name in ("a.json", "a_bs32.json", "b.json"):
        (results / name).write_text("{}")
    docs = ["raw: `results/a_bs32.json`, and x_b.json is another file"]
    assert orphan_results(results, docs) == ["a.json", "b.json"]
    assert orphan_results(results, docs + ["a.json and b.json."]) == []

    for name in ("_common.py", "one.py", "two.py"):
        (tmp_path / name).write_text("")
    index = "| `one.py` | ... |\ntwo.py is mentioned only in prose\n"
    assert unlisted_scripts(tmp_path, index) == ["two.py"]

    doc = tmp_path / "doc.md"
    doc.write_text("# Doc\n\n## Pricing throughput (issue 3)\n\n[ok](#pricing-throughput-issue-3) [bad](#gone)\n")
    assert broken_links(doc) == ["#gone"]
