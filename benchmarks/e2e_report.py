"""Tables and plots of end-to-end rows: ``python benchmarks/e2e_report.py A.json [B.json ...] --out DIR --name N``."""
import argparse

from spense.report import merge

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("json", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", required=True)
    a = ap.parse_args()
    for k, p in merge(a.json, a.out, a.name).items():
        print(f"{k}: {p}")
