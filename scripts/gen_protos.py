"""Generates the Python gRPC modules from protos/ into gen/, the one generated import root.

Run by scripts/run.sh and scripts/test.sh before installing, so generated code always matches the
protos. The output is written to a temporary folder and swapped in, so a half-written tree is
never importable. Never edit what it writes.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "gen"


def generate(out: Path = OUT) -> list[Path]:
    """Compiles every .proto under protos/ into `out`; returns the proto files compiled."""
    import grpc_tools
    from grpc_tools import protoc

    files = sorted(PROTOS.rglob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    tmp = Path(tempfile.mkdtemp(prefix=".gen-", dir=out.parent))
    try:
        args = [
            "protoc",
            f"-I{PROTOS}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[str(f.relative_to(PROTOS)) for f in files],
        ]
        cwd = os.getcwd()
        os.chdir(PROTOS)
        try:
            code = protoc.main(args)
        finally:
            os.chdir(cwd)
        if code != 0:
            raise SystemExit(f"protoc failed with exit code {code}")
        for folder in [tmp, *[p for p in tmp.rglob("*") if p.is_dir()]]:
            if folder != tmp:
                (folder / "__init__.py").touch()
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files


if __name__ == "__main__":
    compiled = generate()
    print(f"generated {len(compiled)} proto files into {OUT.relative_to(ROOT)}/", file=sys.stderr)
