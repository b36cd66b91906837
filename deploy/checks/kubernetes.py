"""Checks of deploy/kubernetes/**.yaml (with kustomize generators): workloads and their
containers, Services, and the objects that refer to them (core_url, HPA, PDB, HTTPRoute)."""

from pathlib import Path

from .rules import config_path, is_ours, show, url_targets
from .workspace import yaml


def env_file(path):
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def kustomization(check, path, doc, configmaps, secrets):
    where = check.rel(path)
    for res in doc.get("resources") or []:
        target = path.parent / res
        if not (target.is_file() or (target / "kustomization.yaml").is_file()):
            check.fail(where, f"resource {res}: no such file or kustomization")
    for gen in doc.get("configMapGenerator") or []:
        data = configmaps.setdefault(gen["name"], {})
        for entry in gen.get("files") or []:
            key, _, file = entry.rpartition("=")
            if not (path.parent / file).is_file():
                check.fail(where, f"configMapGenerator {gen['name']}: no file {file}")
            else:
                data[key or Path(file).name] = (path.parent / file).read_text()
    for gen in doc.get("secretGenerator") or []:
        data = secrets.setdefault(gen["name"], {})
        for file in gen.get("envs") or []:
            # The real file is not in git; its example shows the keys.
            source = next(
                (p for p in (path.parent / file, path.parent / f"{file}.example") if p.is_file()),
                None,
            )
            if source is None:
                check.fail(
                    where,
                    f"secretGenerator {gen['name']}: neither {file} nor {file}.example exists",
                )
            else:
                data.update(env_file(source))


def resolve(port, by_name):
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    return by_name.get(port)


def mounted_config(container, volumes, configmaps, secrets, cpath):
    for mount in container.get("volumeMounts") or []:
        root, sub = mount["mountPath"].rstrip("/"), mount.get("subPath")
        if sub:
            key = sub if cpath == root else None
        else:
            key = cpath.removeprefix(root + "/") if cpath.startswith(root + "/") else None
        volume = volumes.get(mount["name"]) or {}
        source = volume.get("configMap") or volume.get("secret")
        if key is None or not source:
            continue
        store = configmaps if "configMap" in volume else secrets
        name = source.get("name") or source.get("secretName")
        key = next((i["key"] for i in source.get("items") or [] if i["path"] == key), key)
        return store.get(name, {}).get(key), f"{name}/{key}"
    return None, None


def container_env(check, cw, c, configmaps, secrets):
    env = {}
    for e in c.get("env") or []:
        ref = e.get("valueFrom") or {}
        if "configMapKeyRef" in ref or "secretKeyRef" in ref:
            key_ref = ref.get("configMapKeyRef") or ref["secretKeyRef"]
            store = configmaps if "configMapKeyRef" in ref else secrets
            env[e["name"]] = str(store.get(key_ref["name"], {}).get(key_ref["key"], ""))
        else:
            env[e["name"]] = str(e.get("value", ""))
    for source in c.get("envFrom") or []:
        kind = "configMapRef" if "configMapRef" in source else "secretRef"
        name = source[kind]["name"]
        data = (configmaps if kind == "configMapRef" else secrets).get(name)
        if data is None:
            check.fail(
                cw,
                f"envFrom {kind} {name}: no such {'ConfigMap' if kind == 'configMapRef' else 'Secret'}",
            )
            continue
        env.update({source.get("prefix", "") + k: str(v) for k, v in data.items()})
    check.env_names(cw, env)
    return env


def k8s_container(check, where, spec, c, configmaps, secrets):
    cw = f"{where} container {c['name']}"
    env = container_env(check, cw, c, configmaps, secrets)
    info = {
        "by_name": {p["name"]: p["containerPort"] for p in c.get("ports") or [] if "name" in p},
        "declared": {p["containerPort"] for p in c.get("ports") or []},
        "binary": None,
    }
    if not is_ours(c.get("image")):
        return info
    if c.get("command"):
        check.fail(
            cw,
            "sets command:, which replaces the image's entrypoint (it raises the open-file limit); use args:",
        )
    argv = [str(a) for a in c.get("command") or c.get("args") or []]
    binary = check.binary(cw, argv)
    if not binary:
        return info
    table, cpath = None, config_path(argv)
    if cpath:
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        text, source = mounted_config(c, volumes, configmaps, secrets, cpath)
        if text is None:
            check.fail(
                cw,
                f"--config {cpath} is not mounted from a ConfigMap or Secret key in these manifests",
            )
        else:
            table = check.toml_keys(f"{cw} ({source})", text)
    config = check.effective(table, env)
    ports, health = check.role_ports(binary, config)
    if info["declared"] != set(ports.values()):
        check.fail(cw, f"containerPorts {sorted(info['declared'])}, but {binary} listens on {show(ports)}")
    for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c.get(probe_name)
        if probe is None:
            if probe_name != "startupProbe":
                check.fail(cw, f"no {probe_name}")
            continue
        action = probe.get("httpGet") or probe.get("tcpSocket") or {}
        port = resolve(action.get("port"), info["by_name"])
        if port != health:
            check.fail(
                cw,
                f"{probe_name} probes port {action.get('port')!r} ({port}); "
                f"{binary} serves /up and /ready on {health}",
            )
        if "httpGet" in probe and probe["httpGet"].get("path") not in ("/up", "/ready"):
            check.fail(
                cw,
                f"{probe_name} asks for {probe['httpGet'].get('path')}; the endpoints are /up and /ready",
            )
    if binary == "edge-gateway":
        check_drain(check, cw, spec, c, config)
    info.update(binary=binary, config=config, ports=ports)
    return info


def check_drain(check, cw, spec, c, config):
    pre = (c.get("lifecycle") or {}).get("preStop")
    if not pre:
        check.fail(
            cw,
            "no preStop: the edge would close its clients before load balancers stop sending it new ones",
        )
        return
    cmd = (pre.get("exec") or {}).get("command") or []
    wait = (
        int(cmd[1])
        if cmd[:1] == ["sleep"] and len(cmd) > 1
        else int((pre.get("sleep") or {}).get("seconds", 0))
    )
    grace = int(config["server"]["shutdown_grace_secs"])
    period = int(spec.get("terminationGracePeriodSeconds", 30))
    if period <= wait + grace:
        check.fail(
            cw,
            f"terminationGracePeriodSeconds {period} must exceed "
            f"preStop {wait} s + shutdown_grace_secs {grace} s",
        )


def check_kubernetes(check):
    base = check.code.root / "deploy/kubernetes"
    docs = []
    for path in sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml")):
        try:
            docs += [(path, d) for d in yaml.safe_load_all(path.read_text()) if d]
        except yaml.YAMLError as e:
            check.fail(check.rel(path), f"not valid YAML: {e}")
    configmaps, secrets = {}, {}
    for path, doc in docs:
        name, kind = (doc.get("metadata") or {}).get("name"), doc.get("kind")
        if kind == "Kustomization":
            kustomization(check, path, doc, configmaps, secrets)
        elif kind == "ConfigMap":
            configmaps[name] = dict(doc.get("data") or {})
        elif kind == "Secret":
            secrets[name] = {**(doc.get("data") or {}), **(doc.get("stringData") or {})}
    for name, data in configmaps.items():
        for key, text in data.items():
            if key.endswith(".toml"):
                check.toml_keys(f"ConfigMap {name}/{key}", text)
    workloads, services, summary = [], {}, []
    for path, doc in docs:
        if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
            where = f"{check.rel(path)}: {doc['kind']} {doc['metadata']['name']}"
            template = doc["spec"]["template"]
            containers = [
                k8s_container(check, where, template["spec"], c, configmaps, secrets)
                for c in template["spec"].get("containers") or []
            ]
            workloads.append(
                {
                    "kind": doc["kind"],
                    "name": doc["metadata"]["name"],
                    "where": where,
                    "labels": (template.get("metadata") or {}).get("labels") or {},
                    "containers": containers,
                }
            )
            summary += [
                f"{doc['metadata']['name']}={c['binary']} ({show(c['ports'])})"
                for c in containers
                if c["binary"]
            ]
    for path, doc in docs:
        if doc.get("kind") == "Service":
            services[doc["metadata"]["name"]] = k8s_service(check, path, doc, workloads)
    k8s_references(check, docs, workloads, services)
    kinds = sorted({d.get("kind") for _, d in docs})
    check.report.append(
        f"kubernetes: {len(docs)} objects in {len({p for p, _ in docs})} files ({', '.join(kinds)}); "
        + "; ".join(summary)
    )


def k8s_service(check, path, doc, workloads):
    where = f"{check.rel(path)}: Service {doc['metadata']['name']}"
    selector = (doc.get("spec") or {}).get("selector") or {}
    matched = [w for w in workloads if selector and selector.items() <= w["labels"].items()]
    if not matched:
        check.fail(where, f"selector {selector} matches no workload")
    ports = {}
    for p in doc["spec"].get("ports") or []:
        target = p.get("targetPort", p["port"])
        for w in matched:
            resolved = [
                r for c in w["containers"] for r in [resolve(target, c["by_name"])] if r in c["declared"]
            ]
            if not resolved:
                check.fail(
                    where,
                    f"port {p['port']} → targetPort {target!r}: {w['name']} has no such container port",
                )
            ports[p["port"]] = (resolved[0] if resolved else None, w)
    return ports


def k8s_references(check, docs, workloads, services):
    names = {(w["kind"], w["name"]) for w in workloads}
    for w in workloads:
        for c in w["containers"]:
            for setting, host, port in url_targets(c.get("config") or {}):
                # NATS, Redis and the database are not in these manifests.
                if setting != "[cluster] core_url" or c["binary"] not in check.code.dials_core:
                    continue
                target = services.get(host.split(".")[0], {}).get(port or 80)
                core_port = c["config"]["core"]["port"]
                if target is None:
                    check.fail(w["where"], f"{setting} {host}:{port}: no such Service port")
                elif target[0] != core_port or target[1]["containers"][0]["binary"] != "channel-core":
                    check.fail(
                        w["where"],
                        f"{setting} {host}:{port} reaches port {target[0]} of "
                        f"{target[1]['name']}, not channel-core's gRPC port {core_port}",
                    )
    for path, doc in docs:
        kind, name, spec = (
            doc.get("kind"),
            (doc.get("metadata") or {}).get("name"),
            doc.get("spec") or {},
        )
        where = f"{check.rel(path)}: {kind} {name}"
        if kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef") or {}
            if (ref.get("kind"), ref.get("name")) not in names:
                check.fail(where, f"scales {ref.get('kind')} {ref.get('name')}, which is not defined")
        elif kind == "PodDisruptionBudget":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            if not any(selector and selector.items() <= w["labels"].items() for w in workloads):
                check.fail(where, f"selector {selector} matches no workload")
        elif kind == "HTTPRoute":
            for rule in spec.get("rules") or []:
                for ref in rule.get("backendRefs") or []:
                    if ref.get("port") not in services.get(ref["name"], {}):
                        check.fail(where, f"backend {ref['name']}:{ref.get('port')}: no such Service port")
