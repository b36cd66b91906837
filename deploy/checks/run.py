"""Runs every check of deploy/check against a checkout."""

from .compose import check_compose
from .dockerfile import check_dockerfile
from .kubernetes import check_kubernetes
from .rules import Check
from .workspace import SERVICE_BINS, Code


def run_checks(root):
    check = Check(Code(root.resolve()))
    code = check.code
    check.report.append(
        f"binaries: {', '.join(sorted(code.bins))} (services: "
        + ", ".join(
            f"{b} {'/'.join(f'{s}.{k}' for s, k in code.ports[b])}" for b in SERVICE_BINS if b in code.ports
        )
        + ")"
    )
    keys = sum(len(v) for v in code.sections.values())
    check.report.append(
        f"config: {len(code.sections)} sections, {keys} keys in config/example.toml; "
        f"{len(code.default_app_vars)} SWITCHYARD_DEFAULT_APP_* names; "
        f"read directly: {', '.join(sorted(code.direct_vars)) or 'none'}"
    )
    check.toml_files()
    check_dockerfile(check)
    check_compose(check)
    check_kubernetes(check)
    return check
