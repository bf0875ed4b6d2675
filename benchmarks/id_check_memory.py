"""Peak memory and time of predict's id check on a large line-mode input.

    python benchmarks/id_check_memory.py [--records 1000000] [--out FILE]

Not a test: it measures. Before anything is written, ``predict --input`` reads its input
through once to refuse two records of one id (``rows.refuse_repeated_input_ids``). The
input here is ``--records`` JSON lines, each with a 43-character id and a short text,
written to a temporary folder. The check runs in a fresh process, so the peak resident
memory (``ru_maxrss``) is the check's own plus Python's and stancelab's imports; the same
process with no id check (the input only read) is the baseline beside it. Times are the
process's CPU time, which other jobs on a shared machine do not inflate.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

CHILD = """
import resource, sys, time
from pathlib import Path
from stancelab.corpus.readers import read_records
from stancelab.prediction.rows import refuse_repeated_input_ids
path, check = Path(sys.argv[1]), sys.argv[2] == "check"
started = time.process_time()
if check:
    records = refuse_repeated_input_ids([path], documents=False)
else:
    records = sum(1 for _ in read_records(path))
print(records, time.process_time() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(path: Path, check: bool) -> dict:
    ran = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), "check" if check else "read"],
        capture_output=True,
        text=True,
        check=True,
    )
    records, seconds, peak_kb = ran.stdout.split()
    return {
        "records": int(records),
        "cpu_seconds": round(float(seconds), 1),
        "peak_rss_mb": round(int(peak_kb) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=RESULTS / "id_check_memory.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for i in range(args.records):
                row = {"id": f"statement-{i:033d}", "text": "We will respond with force."}
                handle.write(json.dumps(row) + "\n")
        result = {
            "machine": f"{platform.machine()}, Python {platform.python_version()}",
            "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "input_bytes": path.stat().st_size,
            "read_only": measure(path, check=False),
            "id_check": measure(path, check=True),
        }
    from stancelab.files import write_json

    write_json(args.out, result)
    print(json.dumps(result, indent=1))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
