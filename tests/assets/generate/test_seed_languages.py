"""Seeds from languages other than Python: tree-sitter functions with their doc comments, the same drop reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.generate.seed_extract import ExtractConfig, SeedExtraction
from assets.generate.seed_languages import LANGUAGE_NAMES, language_for, scan_functions
from assets.generate.seed_sources import SourceError, SourceSpec, iter_files, load_sources

CPP = """\
#include <vector>

// Sum of the squares of the values.
// Empty input gives zero.
template <typename T>
T sum_squares(const std::vector<T>& values) {
    T total = 0;
    for (const T& v : values) total += v * v;
    return total;
}

namespace geometry {
/** Area of a w by h rectangle, zero for negative sides. */
double area(double w, double h) {
    if (w < 0 || h < 0) return 0;
    return w * h;
}
}  // namespace geometry

class Counter {
 public:
    /// Adds one and returns the new count.
    int bump() {
        count_ += 1;
        return count_;
    }
 private:
    int count_ = 0;
};
"""
C = """\
#include <string.h>

/* Count the vowels of a NUL-terminated string. */
int count_vowels(const char *s) {
    int n = 0;
    for (; *s; s++) n += strchr("aeiou", *s) != NULL;
    return n;
}

int undocumented_twice(int x) {
    int y = x * 2;
    return y;
}
"""
JAVA = """\
package util;

public final class Strings {
    /** Reverse a string, keeping null as null. */
    public static String reverse(String s) {
        if (s == null) return null;
        return new StringBuilder(s).reverse().toString();
    }

    /** Length of the text, an instance method. */
    public int length(String text) {
        int n = text.length();
        return n;
    }
}
"""
JAVASCRIPT = """\
// Clamp x into [lo, hi].
// Both bounds are inclusive.
export function clamp(x, lo, hi) {
  if (x < lo) return lo;
  return x > hi ? hi : x;
}

/** Sum of an array of numbers. */
const total = (xs) =>
  xs.reduce((a, b) => a + b, 0) +
  0;
"""
TYPESCRIPT = """\
/**
 * Title-case every word of a sentence.
 */
export function titleCase(text: string): string {
  return text
    .split(" ")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(" ");
}

// Log a message; it returns nothing.
export function log(message: string): void {
  console.log(message);
  console.log(message);
}
"""
RUST = """\
/// Greatest common divisor by Euclid's algorithm.
/// Zero only when both inputs are zero.
#[inline]
pub fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

pub struct Stack { items: Vec<i32> }

impl Stack {
    /// Pop the top item, if any.
    pub fn pop(&mut self) -> Option<i32> {
        let top = self.items.pop();
        top
    }
}
"""
GO = """\
package mathx

// Max returns the larger of a and b.
// Ties return a.
func Max(a, b int) int {
	if b > a {
		return b
	}
	return a
}

// Len is a method: it has a receiver.
func (s *Set) Len() int {
	n := len(s.items)
	return n
}
"""
BASH = """\
#!/usr/bin/env bash
# Print the extension of a file name, without the dot.
# Empty when there is none.
extension() {
  local name="$1"
  [[ "$name" == *.* ]] || return 0
  echo "${name##*.}"
}
"""
PHP = """\
<?php
/**
 * Turn a title into a URL slug.
 */
function slugify(string $title): string {
    $slug = strtolower(trim($title));
    return preg_replace('/[^a-z0-9]+/', '-', $slug);
}

class Cart {
    /** Total of the items. */
    public function total(): int {
        $sum = array_sum($this->items);
        return $sum;
    }
}
"""
BROKEN_GO = """\
package broken

// Broken has an unclosed call.
func Broken(x int) int {
	y := compute(x,
	return y
}

// Fine still parses and is kept.
func Fine(x int) int {
	y := x * 3
	return y + 1
}
"""
FILES = {"src/sum.cpp": CPP, "src/vowels.c": C, "src/Strings.java": JAVA, "web/clamp.js": JAVASCRIPT,
         "web/title.ts": TYPESCRIPT, "crate/gcd.rs": RUST, "pkg/max.go": GO, "bin/ext.sh": BASH,
         "php/slug.php": PHP}
EXPECTED = {"sum_squares": "cpp", "geometry.area": "cpp", "count_vowels": "c", "Strings.reverse": "java",
            "clamp": "javascript", "total": "javascript", "titleCase": "typescript", "gcd": "rust", "Max": "go",
            "extension": "bash", "slugify": "php"}


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run(spec: SourceSpec, config: ExtractConfig) -> SeedExtraction:
    extraction = SeedExtraction(spec, config)
    for file in iter_files(spec):
        extraction.add_file(file)
    extraction.finish()
    return extraction


def all_spec(root: Path, license: str = "MIT") -> SourceSpec:
    return SourceSpec("poly", "local", path=str(root), license=license, languages=("all",))


def test_functions_of_every_language_with_their_doc_comments(tmp_path):
    extraction = run(all_spec(write(tmp_path, FILES)), ExtractConfig())
    found = {s["symbol"]: s for s in extraction.seeds}
    assert {name: s["language"] for name, s in found.items()} == EXPECTED
    assert all(s["kind"] == "function" for s in extraction.seeds)
    starts = {"sum_squares": "// Sum of the squares", "geometry.area": "/** Area of a w by h", "gcd": "/// Greatest",
              "count_vowels": "/* Count the vowels", "Strings.reverse": "/** Reverse a string",
              "clamp": "// Clamp x into", "titleCase": "/**\n * Title-case", "Max": "// Max returns",
              "extension": "# Print the extension", "slugify": "/**\n * Turn a title"}
    for name, start in starts.items():
        assert found[name]["code"].startswith(start), name
    assert "#[inline]\npub fn gcd" in found["gcd"]["code"] and found["gcd"]["code"].rstrip().endswith("a\n}")
    assert "#!/usr/bin/env" not in found["extension"]["code"]
    assert found["Strings.reverse"]["code"].startswith("/** Reverse a string, keeping null as null. */\npublic static")
    assert "template <typename T>" in found["sum_squares"]["code"]
    # Methods are not seeds by default: counted, one per language that has them.
    methods = sorted(r["symbol"] for r in extraction.rejects if r["reason"] == "method")
    assert methods == ["Cart.total", "Counter.bump", "Len", "Stack.pop", "Strings.length"]
    rejected = {r["symbol"]: r["reason"] for r in extraction.rejects}
    assert rejected["undocumented_twice"] == "no_docstring" and rejected["log"] == "no_return"
    assert sum(extraction.counts.values()) == len(extraction.rejects)


def test_methods_when_asked(tmp_path):
    extraction = run(all_spec(write(tmp_path, FILES)), ExtractConfig(include_methods=True))
    symbols = {s["symbol"] for s in extraction.seeds}
    assert {"Cart.total", "Counter.bump", "Len", "Stack.pop", "Strings.length"} <= symbols
    assert extraction.counts["method"] == 0


def test_parse_errors_are_counted_and_the_rest_is_kept(tmp_path):
    root = write(tmp_path, {"pkg/broken.go": BROKEN_GO,
                            "pkg/stray.c": C + "\nint stray = ;\n",
                            "pkg/lost.rs": "/// Lost.\nfn lost( -> i32 { 1 }\n"})
    extraction = run(all_spec(root), ExtractConfig())
    assert sorted(s["symbol"] for s in extraction.seeds) == ["Fine", "count_vowels"]
    errors = [r for r in extraction.rejects if r["reason"] == "syntax_error"]
    assert {(r["path"], r["symbol"]) for r in errors if r["symbol"]} == {("pkg/broken.go", "Broken"),
                                                                          ("pkg/lost.rs", "lost")}
    # An error outside every function (here a broken declaration) is a row of its own, for the file.
    outside = [(r["path"], r["detail"]) for r in errors if r["symbol"] is None]
    assert outside == [("pkg/stray.c", "line 15, outside the functions read")]


def test_license_generated_and_duplicates_for_every_language(tmp_path):
    files = {**FILES, "copy/sum.cpp": CPP, "copy/gcd.rs": RUST + "\n// trailing note\n",
             "gen/api.pb.go": GO.replace("Max", "Max2"), "web/app.min.js": JAVASCRIPT.replace("clamp", "c2"),
             "gen/marked.ts": "// Code generated by protoc. DO NOT EDIT.\n" + TYPESCRIPT.replace("title", "t2"),
             "node_modules/x/index.js": JAVASCRIPT.replace("clamp", "c3")}
    root = write(tmp_path, files)
    extraction = run(all_spec(root), ExtractConfig())
    assert {s["symbol"] for s in extraction.seeds} == set(EXPECTED)
    assert extraction.counts["generated_or_vendored"] == 4
    duplicates = [r for r in extraction.rejects if r["reason"] == "exact_duplicate"]
    assert {r["symbol"] for r in duplicates} == {"sum_squares", "geometry.area", "gcd"}
    assert all(r["path"].startswith("copy/") or r["path"].startswith("src/") or r["path"].startswith("crate/")
               for r in duplicates)
    gpl = run(all_spec(root, license="GPL-3.0-only"), ExtractConfig())
    assert gpl.seeds == [] and gpl.counts["license"] == len(files) - 4  # the generated ones are dropped first


def test_near_duplicates(tmp_path):
    tweaked = RUST.replace("        b = t;", "        b = t; // swap")  # one comment added
    extraction = run(all_spec(write(tmp_path, {"a/gcd.rs": RUST, "b/gcd.rs": tweaked})), ExtractConfig())
    assert [s["symbol"] for s in extraction.seeds] == ["gcd"]
    near = [r for r in extraction.rejects if r["reason"] == "near_duplicate"]
    assert len(near) == 1 and near[0]["detail"] == extraction.seeds[0]["seed_id"]


def test_window_mode_on_other_languages(tmp_path):
    root = write(tmp_path, {"crate/gcd.rs": RUST, "pkg/broken.go": BROKEN_GO})
    runs = [run(all_spec(root), ExtractConfig(mode="window", min_chars=10)) for _ in range(2)]
    assert runs[0].seeds == runs[1].seeds and runs[0].seeds
    assert {s["language"] for s in runs[0].seeds} == {"rust", "go"}
    assert all(s["kind"] == "window" and 1 <= s["n_lines"] <= 15 for s in runs[0].seeds)
    # Windows need no tree: a file with a parse error still gives windows and no syntax_error row.
    assert runs[0].counts["syntax_error"] == 0 and runs[0].files_kept == 2
    both = run(all_spec(root), ExtractConfig(mode="both", min_chars=10))
    assert {s["kind"] for s in both.seeds} == {"function", "window"}


def test_sources_read_python_only_unless_they_ask(tmp_path):
    python = ('def doubled(values):\n    """Every value twice."""\n    result = [v * 2 for v in values]\n'
              '    return result\n')
    root = write(tmp_path, {**FILES, "py/mod.py": python})
    python_only = SourceSpec("t", "local", path=str(root), license="MIT")
    assert [f.path for f in iter_files(python_only)] == ["py/mod.py"]
    rust_go = SourceSpec("t", "local", path=str(root), license="MIT", languages=("rust", "go"))
    assert sorted(f.path for f in iter_files(rust_go)) == ["crate/gcd.rs", "pkg/max.go"]
    extraction = run(rust_go, ExtractConfig())
    assert {s["symbol"]: s["language"] for s in extraction.seeds} == {"gcd": "rust", "Max": "go"}
    assert [s["language"] for s in run(python_only, ExtractConfig()).seeds] == ["python"]


@pytest.mark.parametrize("path, languages, language", [
    ("a/x.h", LANGUAGE_NAMES, "c"), ("a/x.h", ("cpp",), "cpp"), ("a/x.hpp", LANGUAGE_NAMES, "cpp"),
    ("a/x.mjs", LANGUAGE_NAMES, "javascript"), ("a/x.bash", ("bash",), "bash"), ("a/x.rs", ("go",), None),
    ("a/x.txt", LANGUAGE_NAMES, None),
])
def test_language_by_extension(path, languages, language):
    assert language_for(path, languages) == language


def test_languages_in_the_sources_file(tmp_path):
    file = tmp_path / "sources.yaml"
    file.write_text(f"sources:\n  a: {{kind: local, path: {tmp_path}, languages: all}}\n"
                    f"  b: {{kind: local, path: {tmp_path}, languages: rust}}\n"
                    f"  c: {{kind: local, path: {tmp_path}, languages: [go, php]}}\n")
    sources = load_sources(file)
    assert sources["a"].languages == LANGUAGE_NAMES and sources["b"].languages == ("rust",)
    assert sources["c"].languages == ("go", "php") and sources["stdlib"].languages == ("python",)
    file.write_text(f"sources:\n  d: {{kind: local, path: {tmp_path}, languages: [go, cobol]}}\n")
    with pytest.raises(SourceError, match=r"source 'd': language 'cobol' is not one of python, c, cpp, .* or all") \
            as info:
        load_sources(file)
    assert "\n" not in str(info.value) and str(file) in str(info.value)


def test_scan_functions_returns_analogues():
    js = ("// Twice.\nconst twice = (x) => x * 2;\n\n"
          "// Only logs.\nfunction shout(x) {\n  [1].map((y) => { return y; });\n  console.log(x);\n}\n")
    found = {name: reason for name, reason, _ in scan_functions(js, "javascript")[0]}
    assert found == {"twice": None, "shout": "no_return"}  # a callback's return is not the function's
    c = "/* Pointer. */\nvoid *make(void) { return 0; }\n/* Nothing. */\nvoid nothing(void) { }\n"
    assert {name: reason for name, reason, _ in scan_functions(c, "c")[0]} == {"make": None, "nothing": "no_return"}
    trailing = "int x = 1; // not a doc comment\nint f(void) { return x; }\n"
    assert scan_functions(trailing, "c")[0][0][1] == "no_docstring"
