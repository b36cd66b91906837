"""The Check record (problems and report) with the rules every deployment file is held to, and
helpers shared by the Compose and Kubernetes checks."""

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from .workspace import SERVICE_BINS, Code


class Check:
    def __init__(self, code: Code):
        self.code = code
        self.problems = []
        self.report = []
        self.tables = {}  # TOML text -> parsed table, so a file mounted in many places is judged once

    def fail(self, where, message):
        self.problems.append(f"{where}: {message}")

    def rel(self, path: Path):
        return str(path.relative_to(self.code.root))

    # -- shared rules ------------------------------------------------------------------------

    def env_names(self, where, names):
        for name in names:
            if name.startswith("SWITCHYARD_") and self.code.env_target(name) is None:
                self.fail(
                    where,
                    f"{name} is not a config key (SWITCHYARD_<KEY> for [server], "
                    "SWITCHYARD_<SECTION>_<KEY>, SWITCHYARD_DEFAULT_APP_*) nor read by a binary",
                )

    def toml_keys(self, where, text):
        if text in self.tables:
            return self.tables[text]
        try:
            table = self.tables[text] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            self.tables[text] = None
            self.fail(where, f"not valid TOML: {e}")
            return None
        known = self.code.sections
        for section, value in table.items():
            if section == "apps":
                for i, app in enumerate(value if isinstance(value, list) else []):
                    for key in app.keys() - known["apps"] - {"webhooks"}:
                        self.fail(where, f"apps[{i}]: unknown key {key!r}")
                    for hook in app.get("webhooks", []):
                        for key in hook.keys() - known["apps.webhooks"]:
                            self.fail(where, f"apps[{i}].webhooks: unknown key {key!r}")
            elif section not in known:
                self.fail(where, f"unknown section [{section}]")
            else:
                for key in (value.keys() if isinstance(value, dict) else []) - known[section]:
                    self.fail(where, f"[{section}]: unknown key {key!r}")
        return table

    def effective(self, file_table, env):
        """The config a service ends up with: example defaults, then the file, then env."""
        config = {s: dict(v) for s, v in self.code.defaults.items() if isinstance(v, dict)}
        for section, value in (file_table or {}).items():
            if isinstance(value, dict):
                config.setdefault(section, {}).update(value)
        for name, raw in env.items():
            target = self.code.env_target(name) if name.startswith("SWITCHYARD_") else None
            if target and target[0] not in ("", "apps"):
                config.setdefault(target[0], {})[target[1]] = typed(raw)
        # The standard OpenTelemetry variable overrides [telemetry] (config/src/telemetry.rs).
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            if env.get(name):
                config.setdefault("telemetry", {})["otlp_endpoint"] = str(env[name])
        return config

    def role_ports(self, binary, config):
        """{'section.key': port} the binary listens on, and which of them serves /up and /ready."""
        keys = self.code.ports.get(binary, [])
        ports = {f"{s}.{k}": config.get(s, {}).get(k) for s, k in keys}
        health = next((p for n, p in ports.items() if n.endswith(".health_port")), None)
        if health is None and ports:
            health = next(iter(ports.values()))
        return ports, health

    def binary(self, where, argv):
        if not argv:
            return "switchyard"  # the image's CMD
        if argv[0] not in self.code.bins:
            self.fail(
                where,
                f"runs {argv[0]!r}, which is not a binary of the workspace "
                f"({', '.join(sorted(self.code.bins))})",
            )
            return None
        if argv[0] not in SERVICE_BINS:
            self.fail(where, f"{argv[0]!r} is not built into the image (cargo build -p switchyard --bins)")
            return None
        return argv[0]

    # -- files -------------------------------------------------------------------------------

    def toml_files(self):
        deploy = self.code.root / "deploy"
        files = [p for p in sorted(deploy.rglob("*.toml")) if ".run" not in p.parts]
        for path in files:
            self.toml_keys(self.rel(path), path.read_text())
        self.report.append(
            f"config files: {', '.join(self.rel(p) for p in files)}: known sections and keys only"
        )


def typed(raw):
    raw = str(raw)
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    return {"true": True, "false": False}.get(raw, raw)


def config_path(argv):
    for i, arg in enumerate(argv[:-1]):
        if arg in ("--config", "-c"):
            return argv[i + 1]
    return None


def url_targets(config):
    """(setting, host, port or None) for every URL a service dials."""
    cluster, store = config.get("cluster", {}), config.get("app_store", {})
    urls = [("[cluster] nats_url", u.strip()) for u in str(cluster.get("nats_url", "")).split(",")]
    urls += [
        ("[cluster] redis_url", cluster.get("redis_url", "")),
        ("[cluster] core_url", cluster.get("core_url", "")),
    ]
    if cluster.get("webhook_queue") == "sqs" and cluster.get("sqs_endpoint"):
        urls.append(("[cluster] sqs_endpoint", cluster["sqs_endpoint"]))
    if store.get("backend", "file") != "file" and store.get("database_url"):
        urls.append(("[app_store] database_url", store["database_url"]))
    if (config.get("telemetry") or {}).get("otlp_endpoint"):
        urls.append(("[telemetry] otlp_endpoint", config["telemetry"]["otlp_endpoint"]))
    for setting, url in urls:
        parts = urlsplit(str(url))
        if parts.hostname:
            yield setting, parts.hostname, parts.port


def is_ours(image):
    """The Switchyard image, whatever registry or tag the deployment gives it."""
    return bool(image) and str(image).split("@")[0].rsplit("/", 1)[-1].split(":")[0] == "switchyard"


def port_of(spec):
    """The container side of a compose `ports`/`expose` entry."""
    if isinstance(spec, dict):
        return int(spec["target"])
    return int(str(spec).split("/")[0].rsplit(":", 1)[-1])


def show(ports):
    return ", ".join(f"{name} {port}" for name, port in ports.items())
