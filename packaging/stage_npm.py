#!/usr/bin/env python3
"""Stages the npm package `peerlb` for `npm pack` (what `make dist` ships).

The package in bindings/node builds its addon from the repository's Rust crates
(`peerlb = { path = "../../core" }`, workspace-inherited fields). A published package
must stand alone, so the stage gets:

* the files package.json lists, and package.json itself (plus `core/` and `Cargo.lock`
  in its `files`);
* `prebuilds/linux-x64-gnu/peerlb.node`: the addon `make` built (linked for glibc 2.17),
  which the install script uses when the platform matches;
* for everyone else, the Rust sources: the addon crate's Cargo.toml with the workspace's
  fields filled in, its path dependency pointed at `core/` (the core crate as `cargo
  package` normalizes it, from `--core-crate`), the workspace's release profile, and the
  workspace's Cargo.lock.

    python3 packaging/stage_npm.py --repo . --addon bindings/node/peerlb.node \\
        --core-crate target/package/peerlb-0.1.0.crate --out target/dist-stage/npm
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tarfile
import tomllib
from pathlib import Path


def workspace_fields(repo: Path) -> dict:
    root = tomllib.loads((repo / "Cargo.toml").read_text())
    return root["workspace"]["package"]


def toml_value(value: object) -> str:
    return json.dumps(value)  # the strings and numbers used here are valid TOML as JSON


def addon_manifest(repo: Path) -> str:
    """bindings/node/Cargo.toml standing alone: workspace fields filled in, the core at
    `core/`, its own (empty) workspace and the repository's release profile."""
    text = (repo / "bindings/node/Cargo.toml").read_text()
    fields = workspace_fields(repo)

    def inherit(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in fields:
            raise SystemExit(f"bindings/node/Cargo.toml inherits {key!r}, which the workspace does not set")
        return f"{key} = {toml_value(fields[key])}"

    text = re.sub(r"^([a-z-]+)\.workspace = true$", inherit, text, flags=re.M)
    # The core dependency, keeping its other keys (features).
    text, n = re.subn(r'^peerlb = \{ path = "../../core"(,[^}]*)? \}$', r'peerlb = { path = "core"\1 }', text, flags=re.M)
    if n != 1:
        raise SystemExit("bindings/node/Cargo.toml: the core dependency is not where it was expected")
    profile = re.search(r"^\[profile\.release\]\n(?:[^\[\n].*\n?)*", (repo / "Cargo.toml").read_text(), re.M)
    text += "\n# Its own workspace: a package installed inside another cargo workspace stands alone.\n[workspace]\n"
    if profile:
        text += "\n" + profile.group(0)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--addon", type=Path, required=True)
    parser.add_argument("--core-crate", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    node = args.repo / "bindings/node"
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    package = json.loads((node / "package.json").read_text())
    for entry in package["files"]:
        src = node / entry
        if entry.rstrip("/") == "prebuilds":
            continue
        if src.is_dir():
            shutil.copytree(src, out / entry, ignore=shutil.ignore_patterns("*.node", "target"))
        elif src.exists():
            (out / entry).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out / entry)
        else:
            raise SystemExit(f"package.json lists {entry!r}, which bindings/node does not have")
    shutil.copy2(node / "README.md", out / "README.md")
    package["files"] = package["files"] + ["core/", "Cargo.lock"]
    package.pop("devDependencies", None)
    (out / "package.json").write_text(json.dumps(package, indent=2) + "\n")

    prebuilt = out / "prebuilds/linux-x64-gnu/peerlb.node"
    prebuilt.parent.mkdir(parents=True)
    shutil.copy2(args.addon, prebuilt)

    (out / "Cargo.toml").write_text(addon_manifest(args.repo))
    shutil.copy2(args.repo / "Cargo.lock", out / "Cargo.lock")
    with tarfile.open(args.core_crate) as crate:
        top = crate.getnames()[0].split("/")[0]
        crate.extractall(out / ".core-crate", filter="data")
    shutil.move(str(out / ".core-crate" / top), str(out / "core"))
    shutil.rmtree(out / ".core-crate")
    print(f"staged the npm package in {out}")


if __name__ == "__main__":
    main()
