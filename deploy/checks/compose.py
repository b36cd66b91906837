"""Checks of deploy/compose/docker-compose.yml and the HAProxy config it mounts."""

import shlex

from .rules import config_path, is_ours, port_of, show, url_targets
from .workspace import yaml


def compose_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def mounted_file(base, volumes, target):
    """The local file a compose volume puts at `target`, or None."""
    for vol in volumes or []:
        src, dst = (
            (vol.get("source"), vol.get("target"))
            if isinstance(vol, dict)
            else (str(vol).split(":") + [""])[:2]
        )
        if not src or not src.startswith((".", "/")):
            continue
        local = (base / src).resolve()
        if dst == target:
            return local
        if target.startswith(dst.rstrip("/") + "/"):
            return local / target[len(dst.rstrip("/")) + 1 :]
    return None


def check_compose(check):
    path = check.code.root / "deploy/compose/docker-compose.yml"
    where = check.rel(path)
    services = (yaml.safe_load(path.read_text()) or {}).get("services") or {}
    served, roles, configs, summary = {}, {}, {}, []
    for name, svc in services.items():
        w = f"{where}: service {name}"
        env = compose_env(svc)
        check.env_names(w, env)
        served[name] = {port_of(p) for p in (svc.get("expose") or []) + (svc.get("ports") or [])}
        if not (is_ours(svc.get("image")) or "build" in svc):
            continue
        argv = svc.get("command") or []
        argv = shlex.split(argv) if isinstance(argv, str) else [str(a) for a in argv]
        binary = check.binary(w, argv)
        if not binary:
            continue
        table, cpath = None, config_path(argv)
        if cpath:
            local = mounted_file(path.parent, svc.get("volumes"), cpath)
            if local is None or not local.is_file():
                check.fail(w, f"--config {cpath} is not a file mounted from the repository")
            else:
                table = check.toml_keys(f"{w} ({cpath})", local.read_text())
        config = check.effective(table, env)
        ports, health = check.role_ports(binary, config)
        if served[name] != set(ports.values()):
            check.fail(w, f"exposes {sorted(served[name])}, but {binary} listens on {show(ports)}")
        test = (svc.get("healthcheck") or {}).get("test") or []
        test = shlex.split(test) if isinstance(test, str) else [str(t) for t in test]
        if "switchyard-health" in test[1:] and len(test) > test.index("switchyard-health") + 1:
            probed = int(test[test.index("switchyard-health") + 1])
            if probed != health:
                check.fail(w, f"the health check probes port {probed}; {binary} serves /ready on {health}")
        served[name], roles[name], configs[name] = set(ports.values()), binary, config
        replicas = (svc.get("deploy") or {}).get("replicas", 1)
        summary.append(f"{name}={binary}×{replicas} ({show(ports)})")
    for name, config in configs.items():
        for setting, host, port in url_targets(config if roles[name] != "switchyard" else {}):
            w = f"{where}: service {name}"
            if setting == "[cluster] core_url" and roles[name] not in check.code.dials_core:
                continue
            if host not in services:
                check.fail(w, f"{setting} names {host!r}, which is not a compose service")
            elif port and served[host] and port not in served[host]:
                check.fail(w, f"{setting} dials {host}:{port}; {host} serves {sorted(served[host])}")
            elif setting == "[cluster] core_url" and (
                roles.get(host) != "channel-core" or (port or 80) != configs[host]["core"]["port"]
            ):
                check.fail(w, f"{setting} dials {host}:{port or 80}, which is not channel-core's gRPC port")
    for name, svc in services.items():
        for vol in svc.get("volumes") or []:
            src = vol.get("source") if isinstance(vol, dict) else str(vol).split(":")[0]
            if src and src.endswith(".cfg") and (path.parent / src).is_file():
                check_haproxy(check, (path.parent / src).resolve(), services, served, name)
    check.report.append(
        f"compose: {len(services)} services; {'; '.join(summary)}; "
        "SWITCHYARD_* names, mounted config, exposed and health-check ports, config URLs"
    )


def check_haproxy(check, cfg, services, served, proxy):
    where = check.rel(cfg)
    servers = []
    for line in cfg.read_text().splitlines():
        tokens = line.split("#")[0].split()
        if tokens[:1] == ["bind"]:
            port = int(tokens[1].rsplit(":", 1)[1])
            if port not in served[proxy]:
                check.fail(where, f"binds {port}, which service {proxy} does not publish")
        elif tokens[:1] in (["server"], ["server-template"]):
            host, _, port = tokens[3 if tokens[0] == "server-template" else 2].rpartition(":")
            servers.append(f"{host}:{port}")
            if host not in services:
                check.fail(where, f"server {host}:{port}: no compose service {host!r}")
            elif int(port) not in served[host]:
                check.fail(where, f"server {host}:{port}: {host} serves {sorted(served[host])}")
    check.report.append(f"compose HAProxy ({where}): servers {', '.join(servers)}")
