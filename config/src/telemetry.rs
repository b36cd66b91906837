//! `[telemetry]`: span export and metrics, for every binary (the embedded one too). The
//! standard OpenTelemetry variables override it, as every OpenTelemetry SDK reads them.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// OTLP/gRPC endpoint that receives spans (`http://jaeger:4317`, plain HTTP/2); empty:
    /// spans are not exported. `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` set it.
    pub otlp_endpoint: String,
    /// Share of new traces exported, 0 to 1. A span continuing a trace from another service
    /// follows that trace's decision. `OTEL_TRACES_SAMPLER` / `_ARG` override both.
    #[serde(deserialize_with = "ratio")]
    pub sample_ratio: f64,
    /// `service.name` on exported spans; empty: the binary's name. `OTEL_SERVICE_NAME` sets it.
    pub service_name: String,
    /// Serve `/metrics` (Prometheus) on each service's HTTP port and record what it shows.
    pub metrics: bool,
    /// Whether a continued trace follows its parent's sampling decision; only the
    /// `OTEL_TRACES_SAMPLER` names change it (`always_on`, `traceidratio`: no).
    #[serde(skip)]
    pub parent_based: bool,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        TelemetrySection {
            otlp_endpoint: String::new(),
            sample_ratio: 0.01,
            service_name: String::new(),
            metrics: true,
            parent_based: true,
        }
    }
}

/// A number, or a string holding one: `SWITCHYARD_TELEMETRY_SAMPLE_RATIO=0.5` arrives as text.
fn ratio<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("sample_ratio {s:?} is not a number"))),
    }
}

impl TelemetrySection {
    /// Applies the OpenTelemetry variables that have a meaning here; a value that cannot be
    /// honoured is an error like any other bad setting.
    pub(crate) fn apply_otel_env(&mut self, env: &HashMap<String, String>) -> Vec<String> {
        let mut errors = Vec::new();
        let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        if let Some(url) =
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| get("OTEL_EXPORTER_OTLP_ENDPOINT"))
        {
            self.otlp_endpoint = url.to_owned();
        }
        if let Some(name) = get("OTEL_SERVICE_NAME") {
            self.service_name = name.to_owned();
        }
        let protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if protocol.is_some_and(|p| p != "grpc") {
            errors.push(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL {:?}: only \"grpc\" is supported",
                protocol.unwrap_or_default()
            ));
        }
        let off = get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || get("OTEL_TRACES_EXPORTER").is_some_and(|v| v == "none");
        if off {
            self.otlp_endpoint.clear();
        }
        if let Some(sampler) = get("OTEL_TRACES_SAMPLER") {
            let arg = get("OTEL_TRACES_SAMPLER_ARG").map(str::parse::<f64>);
            let ratio = match arg {
                None => Ok(self.sample_ratio),
                Some(Ok(r)) => Ok(r),
                Some(Err(_)) => Err(format!(
                    "OTEL_TRACES_SAMPLER_ARG {:?} is not a number",
                    get("OTEL_TRACES_SAMPLER_ARG").unwrap_or_default()
                )),
            };
            let chosen = match sampler {
                "always_on" => Ok((1.0, false)),
                "always_off" => Ok((0.0, false)),
                "traceidratio" => ratio.map(|r| (r, false)),
                "parentbased_always_on" => Ok((1.0, true)),
                "parentbased_always_off" => Ok((0.0, true)),
                "parentbased_traceidratio" => ratio.map(|r| (r, true)),
                other => Err(format!(
                    "OTEL_TRACES_SAMPLER {other:?} is not one of always_on, always_off, \
                     traceidratio, parentbased_always_on, parentbased_always_off, \
                     parentbased_traceidratio"
                )),
            };
            match chosen {
                Ok((r, parent_based)) => {
                    self.sample_ratio = r;
                    self.parent_based = parent_based;
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    pub(crate) fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            errors.push(format!(
                "[telemetry] sample_ratio {} must be between 0 and 1",
                self.sample_ratio
            ));
        }
        // No TLS in the exporter: collectors run beside the services (a sidecar, the same
        // network), and a second TLS stack for them is not worth its weight.
        let url = &self.otlp_endpoint;
        if !url.is_empty() && !url.starts_with("http://") {
            errors.push(format!(
                "[telemetry] otlp_endpoint {url:?} must start with http:// (OTLP over TLS is \
                 not built in; export to a local collector)"
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn otel_variables_override_the_section() {
        let mut t = TelemetrySection::default();
        let errors = t.apply_otel_env(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_SERVICE_NAME", "edge-eu-1"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ]));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(t.otlp_endpoint, "http://collector:4317");
        assert_eq!(t.service_name, "edge-eu-1");
        assert_eq!((t.sample_ratio, t.parent_based), (0.25, false));

        let errors = t.apply_otel_env(&env(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
            ("OTEL_SDK_DISABLED", "true"),
        ]));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((t.sample_ratio, t.parent_based), (1.0, true));
        assert_eq!(t.otlp_endpoint, "", "disabled");
    }

    #[test]
    fn unusable_otel_variables_are_errors() {
        let mut t = TelemetrySection::default();
        let errors = t.apply_otel_env(&env(&[
            ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]));
        assert_eq!(errors.len(), 2, "{errors:?}");
        t.sample_ratio = 1.5;
        t.otlp_endpoint = "collector:4317".into();
        assert_eq!(t.validate().len(), 2);
    }
}
