//! `bpfld image build` and `bpfld image inspect`.

use std::path::{Path, PathBuf};

use bpfld::image::{self, BuildInput};
use bpfld::model::Endian;
use bpfld::{Error, Result};

/// Builds the archive and writes it atomically; returns a short report.
pub(crate) fn build(
    output: &Path,
    tag: Option<&str>,
    both_endian: bool,
    inputs: &[PathBuf],
    json: bool,
) -> Result<String> {
    if both_endian && inputs.len() != 1 {
        return Err(Error::new(
            "--both-endian takes one object (it writes the other byte order itself)",
        ));
    }
    let mut files = Vec::new();
    for p in inputs {
        let bytes = std::fs::read(p)
            .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(p.display()))?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((name, bytes));
    }
    if both_endian {
        let (name, bytes) = &files[0];
        let other = bpfld::image::swapped(bytes).map_err(|e| e.in_file(name))?;
        let stem = name.strip_suffix(".o").unwrap_or(name);
        let stem = stem
            .strip_suffix(".bpfel")
            .or_else(|| stem.strip_suffix(".bpfeb"))
            .unwrap_or(stem);
        let suffix = match other.1 {
            Endian::Big => "bpfeb",
            Endian::Little => "bpfel",
        };
        files.push((format!("{stem}.{suffix}.o"), other.0));
    }
    let built_inputs: Vec<BuildInput<'_>> = files
        .iter()
        .map(|(n, b)| BuildInput {
            file_name: n,
            bytes: b,
        })
        .collect();
    let built = image::build(&built_inputs, tag)?;
    bpfld::write_atomic(output, &built.archive)?;
    if json {
        // The names `image inspect --json` uses.
        let manifests: Vec<serde_json::Value> = built
            .platforms
            .iter()
            .map(|(arch, digest)| {
                serde_json::json!({"os": "linux", "architecture": arch, "digest": digest})
            })
            .collect();
        let v = serde_json::json!({
            "output": output.display().to_string(),
            "tag": tag,
            "digest": built.digest,
            "manifests": manifests,
        });
        return serde_json::to_string_pretty(&v)
            .map(|t| t + "\n")
            .map_err(|e| Error::new(format!("cannot encode JSON: {e}")));
    }
    let mut text = format!("{}: {}\n", output.display(), built.digest);
    for (arch, digest) in &built.platforms {
        text.push_str(&format!("  linux/{arch}: {digest}\n"));
    }
    Ok(text)
}

/// The `inspect` listing of an image.
pub(crate) fn inspect(arg: &str, json: bool) -> Result<String> {
    let img = crate::input::read_image_path(arg)?;
    let host = img.for_host();
    let obj = bpfld::Object::parse(&host.object).map_err(|e| e.in_file(arg))?;
    let summary = bpfld::show::inspect::summarize(&obj).map_err(|e| e.in_file(arg))?;
    if json {
        let v = serde_json::json!({
            "image": img,
            "object": summary,
        });
        let text = serde_json::to_string_pretty(&v)
            .map_err(|e| Error::new(format!("cannot encode JSON: {e}")))?;
        return Ok(text + "\n");
    }
    let mut t = format!("image: {arg}\n");
    if let Some(tag) = &img.tag {
        t.push_str(&format!("name: {tag}\n"));
    }
    t.push_str(&format!("{}: {}\n", img.media_type, img.digest));
    t.push_str("platforms:\n");
    for m in &img.manifests {
        let platform = match (&m.os, &m.architecture) {
            (Some(os), Some(arch)) => format!("{os}/{arch}"),
            _ => "(no platform)".to_string(),
        };
        t.push_str(&format!(
            "  {platform}: manifest {}, {}-endian {} (layer {})\n",
            m.digest,
            image::order(m.endian),
            m.file_name,
            m.layer_digest
        ));
    }
    let (programs, maps) = host.labels.values();
    t.push_str(&format!(
        "labels:\n  {}: {programs}\n  {}: {maps}\n",
        image::PROGRAMS_LABEL,
        image::MAPS_LABEL
    ));
    t.push('\n');
    t.push_str(&bpfld::show::inspect::render_text(
        &format!("{arg}:{}", host.file_name),
        &summary,
    ));
    Ok(t)
}

/// `bpfld image bpfman-yaml` as parsed.
pub(crate) struct YamlArgs {
    pub(crate) url: String,
    pub(crate) name: Option<String>,
    pub(crate) node_selector: Vec<String>,
    pub(crate) interfaces: Vec<String>,
    pub(crate) priority: Option<u32>,
    pub(crate) proceed_on: Option<String>,
    pub(crate) source: String,
}

/// Writes the ClusterBpfApplication for the source's XDP programs.
pub(crate) fn bpfman_yaml(output: &Path, a: &YamlArgs) -> Result<()> {
    let (name, bytes) = crate::input::read_object_arg(&a.source)?;
    let obj = bpfld::Object::parse(&bytes).map_err(|e| e.in_file(&name))?;
    write_bpfman_yaml(output, &obj, a).map_err(|e| e.in_file(&name))
}

/// Writes the ClusterBpfApplication for the XDP programs of `obj` (a
/// composition is its one program `bpfld_xdp`, with the composition's
/// priority and proceed-on actions).
pub(crate) fn write_bpfman_yaml(
    output: &Path,
    obj: &bpfld::model::object::Object,
    a: &YamlArgs,
) -> Result<()> {
    use bpfld::image::bpfman_yaml::{cluster_bpf_application, name_from_url, Target};
    let mut node_selector = std::collections::BTreeMap::new();
    for kv in &a.node_selector {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::new(format!("--node-selector '{kv}': KEY=VALUE expected")))?;
        node_selector.insert(k.to_string(), v.to_string());
    }
    let proceed_on = a
        .proceed_on
        .as_deref()
        .map(|list| {
            list.parse::<bpfld::compose::ChainActions>()
                .map_err(|e| e.context("--proceed-on"))
        })
        .transpose()?;
    let target = Target {
        name: a.name.clone().unwrap_or_else(|| name_from_url(&a.url)),
        url: a.url.clone(),
        node_selector,
        interfaces: a.interfaces.clone(),
        priority: a.priority,
        proceed_on,
    };
    let yaml = cluster_bpf_application(obj, &target)?;
    bpfld::write_atomic(output, yaml.as_bytes())
}
