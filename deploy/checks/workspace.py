"""What the deployment files may refer to, read from the workspace (the Code class), and PyYAML."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path


def import_yaml():
    try:
        import yaml
    except ImportError:
        if subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pyyaml"]).returncode:
            sys.exit("deploy/check needs PyYAML, and `python3 -m pip install pyyaml` failed")
        import yaml
    return yaml


yaml = import_yaml()
SERVICE_BINS = ("switchyard", "edge-gateway", "api-service", "channel-core", "webhook-worker")


class Code:
    """What the deployment files may refer to, read from the workspace."""

    def __init__(self, root: Path):
        self.root = root
        self.packages = self._packages()
        self.bins = {b: src for bins in self.packages.values() for b, src in bins.items()}
        self.sections, self.defaults = self._config_keys()
        env_rs = (root / "config/src/env.rs").read_text()
        known = re.search(r"let known = \[(.*?)\];", env_rs, re.S)
        self.default_app_vars = set(re.findall(r'"([A-Z_]+)"', known.group(1))) if known else set()
        self.direct_vars = set()
        for src in (root / "switchyard/src/bin").glob("*.rs"):
            self.direct_vars |= set(
                re.findall(r'const \w+: &str = "(SWITCHYARD_[A-Z_]*[A-Z])"', src.read_text())
            )
        # binary -> [(section, key)] it listens on, in the order its source mentions them; a
        # package's main binary may leave the binding to the package's library.
        # The binaries of the switchyard package bind through the shared builders of
        # switchyard/src/compose.rs, so the bodies of the builders a binary calls count as its own.
        compose_rs = root / "switchyard/src/compose.rs"
        compose = compose_rs.read_text() if compose_rs.is_file() else ""
        self.ports = {}
        for name, src in self.bins.items():
            text = src.read_text()
            text += "".join(builder_body(compose, f) for f in re.findall(r"compose::(\w+)\(", text))
            found = re.findall(r"config\.(\w+)\.(\w*port)\b", text)
            if not found and src.name == "main.rs" and (src.parent / "lib.rs").is_file():
                found = re.findall(r"config\.(\w+)\.(\w*port)\b", (src.parent / "lib.rs").read_text())
            if found:
                self.ports[name] = list(dict.fromkeys(found))
        self.dials_core = {name for name, src in self.bins.items() if "core_client(" in src.read_text()}

    def _packages(self):
        members = tomllib.loads((self.root / "Cargo.toml").read_text())["workspace"]["members"]
        packages = {}
        for member in members:
            base = self.root / member
            manifest = tomllib.loads((base / "Cargo.toml").read_text())
            bins = {}
            explicit = manifest.get("bin", [])
            for b in explicit:
                bins[b["name"]] = base / b.get("path", f"src/bin/{b['name']}.rs")
            if (base / "src/main.rs").exists() and not any(b.get("path") == "src/main.rs" for b in explicit):
                bins[manifest["package"]["name"]] = base / "src/main.rs"
            for src in sorted((base / "src/bin").glob("*.rs")):
                bins.setdefault(src.stem, src)
            packages[manifest["package"]["name"]] = bins
        return packages

    def _config_keys(self):
        """Sections and keys of config/example.toml, with the keys it shows commented out."""
        text = (self.root / "config/example.toml").read_text()
        defaults = tomllib.loads(text)
        sections = {"server": set(), "apps": set(), "apps.webhooks": set()}
        current = None
        for line in text.splitlines():
            header = re.match(r"^#?\s*\[\[?\s*([a-z_.]+)\s*\]\]?\s*(#.*)?$", line)
            key = re.match(r"^#?\s*([a-z_][a-z0-9_]*)\s*=", line)
            if header:
                current = header.group(1)
                sections.setdefault(current, set())
            elif key and current:
                sections[current].add(key.group(1))
        return sections, defaults

    def service_sections(self):
        return [s for s in self.sections if s not in ("server", "apps", "apps.webhooks")]

    def env_target(self, name):
        """(section, key) a SWITCHYARD_* variable sets, ('', name) if read directly, or None."""
        rest = name.removeprefix("SWITCHYARD_")
        if rest.startswith("DEFAULT_APP_"):
            return ("apps", rest) if rest.removeprefix("DEFAULT_APP_") in self.default_app_vars else None
        if rest.lower() in self.sections["server"]:
            return ("server", rest.lower())
        for section in self.service_sections():
            key = rest.removeprefix(section.upper() + "_")
            if key != rest and key.lower() in self.sections[section]:
                return (section, key.lower())
        return ("", name) if name in self.direct_vars else None


def builder_body(source, name):
    """The text of `fn name` in `source` (up to the next item at column 0), or ''."""
    found = re.search(rf"^pub (?:async )?fn {name}\b.*?^}}$", source, re.S | re.M)
    return found.group(0) if found else ""
