//! The bpfman custom resource that deploys an image's XDP programs to a
//! set of nodes: a `ClusterBpfApplication` (bpfman.io/v1alpha1), with each
//! program's priority and proceed-on actions taken from the object: a
//! composition's `bpfld_xdp` from its manifest, any other XDP program
//! from its libxdp run config.
//!
//! Written by hand (strings as JSON-quoted scalars, which YAML reads as
//! they are) so no YAML library is needed.

use std::collections::BTreeMap;

use crate::compose::run_config::{self, XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX};
use crate::compose::ChainActions;
use crate::error::{Error, Result};
use crate::model::object::Object;

/// Where and how to deploy.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// The resource's name (a DNS subdomain name).
    pub name: String,
    /// The image reference the nodes pull.
    pub url: String,
    /// Nodes whose labels match all of these; empty for every node.
    pub node_selector: BTreeMap<String, String>,
    /// Interfaces to attach to; empty for each node's primary interface.
    pub interfaces: Vec<String>,
    /// Overrides of the priority and proceed-on set read from the object.
    pub priority: Option<u32>,
    /// Overrides the proceed-on set read from the object.
    pub proceed_on: Option<ChainActions>,
}

/// One XDP program as the resource deploys it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpDeploy {
    /// The program's function name.
    pub program: String,
    /// bpfman's range: 0 (first) to 1000.
    pub priority: u32,
    /// The verdicts after which the next program runs.
    pub proceed_on: ChainActions,
}

/// bpfman's highest (last-running) priority.
pub const MAX_PRIORITY: u32 = 1000;

/// The XDP programs of an object with their place in a bpfman chain.
/// A composition runs as one program: it comes first where its first
/// component would, and lets the chain go on only on a verdict every
/// component continues on (any verdict may be the one a component
/// stopped on).
pub fn xdp_programs(obj: &Object) -> Vec<XdpDeploy> {
    let manifest = obj
        .btf
        .as_ref()
        .map(crate::compose::read_manifest)
        .unwrap_or_default();
    crate::compose::xdp_programs(obj)
        .into_iter()
        .map(|(name, _section)| {
            let (priority, chain) = if name == crate::compose::DISPATCHER && !manifest.is_empty() {
                (
                    manifest.iter().map(|p| p.priority).min().unwrap_or(0),
                    manifest.iter().fold(!0u32, |acc, p| acc & p.chain.bits()),
                )
            } else {
                let cfg = run_config::read(obj, &name);
                (cfg.priority, cfg.chain)
            };
            XdpDeploy {
                program: name,
                priority: priority.min(MAX_PRIORITY),
                proceed_on: ChainActions::from_bits(chain),
            }
        })
        .collect()
}

/// bpfman's names of the XDP actions it can proceed on.
const PROCEED_ON: [(u32, &str); 5] = [
    (XDP_ABORTED, "Aborted"),
    (XDP_DROP, "Drop"),
    (XDP_PASS, "Pass"),
    (XDP_TX, "TX"),
    (XDP_REDIRECT, "ReDirect"),
];

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings always encode")
}

/// Checks a Kubernetes object name: lower-case letters, digits, '-' and
/// '.', starting and ending with a letter or digit, at most 253 bytes.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!(
            "'{name}' is not a valid resource name (lower-case letters, digits, '-' and '.', \
             starting and ending with a letter or digit)"
        )))
    }
}

/// A resource name from an image reference: its last path component
/// without tag or digest, lower-cased, other characters as '-'.
pub fn name_from_url(url: &str) -> String {
    let last = url.rsplit('/').next().unwrap_or(url);
    let last = last.split(['@', ':']).next().unwrap_or(last);
    let s: String = last
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if s.is_empty() {
        "bpfld-image".to_string()
    } else {
        s.to_string()
    }
}

/// The `ClusterBpfApplication` deploying every XDP program of `obj`.
pub fn cluster_bpf_application(obj: &Object, target: &Target) -> Result<String> {
    check_name(&target.name)?;
    if target.url.is_empty() {
        return Err(Error::new("the image reference (--url) is empty"));
    }
    let programs = xdp_programs(obj);
    if programs.is_empty() {
        return Err(Error::new("the object has no XDP program to deploy"));
    }
    if let Some(p) = target.priority.filter(|&p| p > MAX_PRIORITY) {
        return Err(Error::new(format!(
            "priority {p} is out of bpfman's range 0 to {MAX_PRIORITY}"
        )));
    }
    let mut y = String::new();
    y.push_str("apiVersion: bpfman.io/v1alpha1\nkind: ClusterBpfApplication\nmetadata:\n");
    y.push_str(&format!("  name: {}\n", quote(&target.name)));
    y.push_str("spec:\n");
    if target.node_selector.is_empty() {
        y.push_str("  nodeSelector: {}\n");
    } else {
        y.push_str("  nodeSelector:\n    matchLabels:\n");
        for (k, v) in &target.node_selector {
            y.push_str(&format!("      {}: {}\n", quote(k), quote(v)));
        }
    }
    y.push_str("  byteCode:\n    image:\n");
    y.push_str(&format!("      url: {}\n", quote(&target.url)));
    y.push_str("      imagePullPolicy: IfNotPresent\n");
    y.push_str("  programs:\n");
    for p in &programs {
        let priority = target.priority.unwrap_or(p.priority);
        let chain = target.proceed_on.unwrap_or(p.proceed_on).bits();
        y.push_str(&format!(
            "    - name: {}\n      type: XDP\n      xdp:\n        links:\n",
            quote(&p.program)
        ));
        y.push_str("          - interfaceSelector:\n");
        if target.interfaces.is_empty() {
            y.push_str("              primaryNodeInterface: true\n");
        } else {
            y.push_str("              interfaces:\n");
            for i in &target.interfaces {
                y.push_str(&format!("                - {}\n", quote(i)));
            }
        }
        y.push_str(&format!("            priority: {priority}\n"));
        y.push_str("            proceedOn:\n");
        for (action, name) in PROCEED_ON {
            if chain & (1 << action) != 0 {
                y.push_str(&format!("              - {name}\n"));
            }
        }
        // The end of a bpfman dispatcher's chain is not a verdict of this
        // program: let the chain go on past it, as bpfman's default does.
        y.push_str("              - DispatcherReturn\n");
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_image_references() {
        assert_eq!(name_from_url("quay.io/me/xdp-Stats:v1"), "xdp-stats");
        assert_eq!(name_from_url("localhost:5000/a_b@sha256:00"), "a-b");
        assert_eq!(name_from_url("::"), "bpfld-image");
        assert!(check_name("xdp-stats").is_ok());
        assert!(check_name("Xdp").is_err());
        assert!(check_name("-a").is_err());
        assert!(check_name("").is_err());
    }
}
