"""Checks of the Dockerfile: built packages, copied binaries, CMD/ENTRYPOINT/HEALTHCHECK, COPY
sources and EXPOSEd ports."""

import fnmatch
import re
import shlex
from pathlib import Path

from .workspace import SERVICE_BINS, yaml


def dockerfile_instructions(text):
    """(KEYWORD, arguments, has_heredoc) per instruction; heredoc bodies are skipped."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line, i = lines[i], i + 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            line, i = line[:-1] + " " + lines[i].strip(), i + 1
        keyword, _, rest = line.strip().partition(" ")
        heredoc = re.search(r"<<-?['\"]?(\w+)['\"]?", rest)
        if heredoc:
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                i += 1
            i += 1
        out.append((keyword.upper(), rest.strip(), bool(heredoc)))
    return out


def exec_form(rest):
    rest = rest.strip()
    return yaml.safe_load(rest) if rest.startswith("[") else shlex.split(rest)


def dockerignored(root, src):
    ignore = root / ".dockerignore"
    patterns = (
        [p.strip() for p in ignore.read_text().splitlines() if p.strip() and not p.startswith("#")]
        if ignore.exists()
        else []
    )
    parts = Path(src).parts
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(
        fnmatch.fnmatch(x, p) or (p.startswith("**/") and fnmatch.fnmatch(Path(x).name, p[3:]))
        for p in patterns
        for x in prefixes
    )


def check_dockerfile(check):
    root, code = check.code.root, check.code
    path = root / "Dockerfile"
    where = "Dockerfile"
    built, copied, helpers, runs = set(), [], set(), []
    for keyword, rest, heredoc in dockerfile_instructions(path.read_text()):
        if keyword == "RUN" and "cargo build" in rest:
            packages = re.findall(r"(?:-p|--package)\s+([\w-]+)", rest)
            for p in packages:
                if p not in code.packages:
                    check.fail(where, f"cargo build -p {p}: no such package in the workspace")
            built |= {b for p in packages or code.packages for b in code.packages.get(p, {})}
        if keyword == "RUN":
            for name in re.findall(r"target/[\w-]+/([\w.-]+)", rest):
                copied.append(name)
                if name not in built:
                    check.fail(
                        where,
                        f"copies target/…/{name}, which the build does not produce "
                        f"(binaries built: {', '.join(sorted(built)) or 'none'})",
                    )
        if keyword == "COPY":
            args = [a for a in shlex.split(rest.split("<<")[0]) if not a.startswith("--")]
            if heredoc:
                helpers.add(Path(rest.split()[-1]).name)
            elif "--from" not in rest:
                for src in args[:-1]:
                    if src != "." and not (root / src).exists():
                        check.fail(where, f"COPY {src}: no such file in the repository")
                    elif src != "." and dockerignored(root, src):
                        check.fail(where, f"COPY {src}: excluded by .dockerignore")
        if keyword in ("CMD", "ENTRYPOINT"):
            runs.append((keyword, exec_form(rest)))
        if keyword == "HEALTHCHECK":
            runs.append((keyword, exec_form(rest.split("CMD", 1)[1])))
        if keyword == "EXPOSE":
            allowed = {
                p for b in SERVICE_BINS for p in check.role_ports(b, check.effective({}, {}))[0].values()
            }
            for port in rest.split():
                if int(port.split("/")[0]) not in allowed:
                    check.fail(
                        where,
                        f"EXPOSE {port}: no service listens there by default ({sorted(allowed)})",
                    )
    for keyword, argv in runs:
        if argv and argv[0] not in copied and argv[0] not in helpers:
            check.fail(where, f"{keyword} runs {argv[0]!r}, which the image does not contain")
    missing = [b for b in SERVICE_BINS if b not in copied]
    if missing:
        check.fail(where, f"the image lacks {', '.join(missing)}")
    check.report.append(
        f"Dockerfile: builds {', '.join(sorted(built))}; copies {', '.join(copied)}; "
        f"scripts {', '.join(sorted(helpers))}; runs " + "; ".join(f"{k} {a[0]}" for k, a in runs)
    )
