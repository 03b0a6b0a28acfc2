"""Per space: number of candidates; per reference: MACs and params against published figures.

    python benchmarks/count_references.py            # prints markdown for BENCHMARKS.md
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table  # noqa: E402

import nas  # noqa: E402


def main() -> None:
    print(f"Measured on: {machine()}\n")
    rows = []
    for name in nas.space_names():
        s = nas.load_space(name)
        rows.append([name, ", ".join(s.skeletons), f"{s.num_candidates():.3e}",
                     ", ".join(map(str, s.resolutions)), len(s.references())])
    print(table(["space", "skeletons", "candidates", "resolutions", "references"], rows))
    print()
    rows = []
    for name in nas.space_names():
        s = nas.load_space(name)
        for ref in s.references():
            c = nas.count(s.reference(ref))
            pub = s.published(ref)
            macs, params = c["macs"] / 1e6, c["params"] / 1e6
            if pub:
                rows.append([ref, f"{macs:.1f}", pub["macs_m"], f"{(macs / pub['macs_m'] - 1) * 100:+.1f}%",
                             f"{params:.3f}", pub["params_m"],
                             f"{(params / pub['params_m'] - 1) * 100:+.1f}%"])
            else:
                rows.append([ref, f"{macs:.1f}", "n/a", "", f"{params:.3f}", "n/a", ""])
    print(table(["reference", "MACs (M)", "published", "diff", "params (M)", "published", "diff"], rows))
    print()
    # The EfficientNet-Lite README's MAdds also count about 3 operations per output element of every
    # convolution and residual add (tests/test_counting.py, LITE_OPS_PER_ELEMENT)
    s = nas.load_space("efficientnet_lite")
    rows = []
    for ref in s.references():
        cand = s.reference(ref)
        macs = nas.count(cand)["macs"] / 1e6
        elems = sum(la.out_elems for op in cand.ops() for la in op.layers()
                    if la.kind in ("conv", "depthwise", "add")) / 1e6
        pub = s.published(ref)["macs_m"]
        rows.append([ref, f"{macs:.1f}", f"{elems:.2f}", f"{macs + 3 * elems:.1f}", pub,
                     f"{(macs / pub - 1) * 100:+.1f}%", f"{((macs + 3 * elems) / pub - 1) * 100:+.2f}%"])
    print(table(["reference", "MACs (M)", "output elements (M)", "MACs + 3 x elements", "README MAdds",
                 "diff (MACs)", "diff (+3 x elements)"], rows))


if __name__ == "__main__":
    main()
