//! `bpfld image`: bpfman bytecode images as OCI archives, checked with
//! the tools that read them (skopeo, umoci), and objects read from them
//! by `inspect` and `disasm`.

mod common;
use common::*;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn build(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut all = vec!["image", "build", "-o", out.to_str().unwrap()];
    all.extend_from_slice(args);
    ok(&all);
    out
}

/// Unpacks an archive (a plain tar of the layout) into a directory.
fn untar(archive: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let o = tool_output(
        "tar",
        &[
            "-xf",
            archive.to_str().unwrap(),
            "-C",
            dir.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn skopeo_sees_the_labels_and_platform() {
    let test = "skopeo_sees_the_labels_and_platform";
    if !have_tool("skopeo", test) {
        return;
    }
    let dir = tmpdir("image-skopeo");
    let tar = build(
        &dir,
        "c.tar",
        &["--tag", "counter:v1", &fx("xdp_counter.o")],
    );
    let o = tool_output("skopeo", &["inspect", &oci_archive(&tar)]);
    assert!(o.status.success(), "skopeo inspect: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Labels"]["io.ebpf.programs"], r#"{"xdp_count":"xdp"}"#);
    assert_eq!(
        v["Labels"]["io.ebpf.maps"],
        r#"{"bytes":"array","packets":"array"}"#
    );
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    // The reference name given with --tag picks the image too.
    let o = tool_output(
        "skopeo",
        &["inspect", &format!("{}:counter:v1", oci_archive(&tar))],
    );
    assert!(o.status.success(), "skopeo inspect by name: {}", stderr(&o));

    // What skopeo copies (an index with every platform) bpfld reads back.
    let both = build(&dir, "both.tar", &["--both-endian", &fx("xdp_counter.o")]);
    let copy = dir.join("copy");
    let o = tool_output(
        "skopeo",
        &[
            "copy",
            "--all",
            &oci_archive(&both),
            &format!("oci:{}:copied", copy.display()),
        ],
    );
    assert!(o.status.success(), "skopeo copy: {}", stderr(&o));
    let v: Value = serde_json::from_str(&ok(&[
        "image",
        "inspect",
        "--json",
        &format!("oci:{}:copied", copy.display()),
    ]))
    .unwrap();
    assert_eq!(v["image"]["manifests"].as_array().unwrap().len(), 13);
    assert_eq!(
        ok(&[
            "inspect",
            "--json",
            &format!("oci:{}:copied", copy.display())
        ]),
        ok(&["inspect", "--json", &fx("xdp_counter.o")])
    );
}

#[test]
fn umoci_unpacks_the_object_byte_for_byte() {
    let test = "umoci_unpacks_the_object_byte_for_byte";
    if !have_tool("umoci", test) {
        return;
    }
    let dir = tmpdir("image-umoci");
    let tar = build(&dir, "c.tar", &["--tag", "v1", &fx("xdp_counter.o")]);
    let layout = dir.join("layout");
    untar(&tar, &layout);
    let bundle = dir.join("bundle");
    let o = tool_output(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:v1", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "umoci unpack: {}", stderr(&o));
    let got = std::fs::read(bundle.join("rootfs/xdp_counter.o")).unwrap();
    assert_eq!(got, std::fs::read(fixture("xdp_counter.o")).unwrap());
    let names: Vec<_> = std::fs::read_dir(bundle.join("rootfs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "the object is the layer's only entry");
}

#[test]
fn the_layer_entry_is_owned_by_root_mode_0644_time_0() {
    let dir = tmpdir("image-layer");
    let tar = build(&dir, "c.tar", &[&fx("xdp_pass.o")]);
    let layout = dir.join("layout");
    untar(&tar, &layout);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |digest: &Value| {
        layout
            .join("blobs/sha256")
            .join(&digest.as_str().unwrap()[7..])
    };
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(&index["manifests"][0]["digest"])).unwrap())
            .unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let o = tool_output(
        "tar",
        &[
            "--numeric-owner",
            "--utc",
            "-tvzf",
            blob(&layer["digest"]).to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let listing = stdout(&o);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 1, "{listing}");
    assert!(lines[0].starts_with("-rw-r--r-- 0/0"), "{listing}");
    assert!(lines[0].contains("1970-01-01 00:00"), "{listing}");
    assert!(lines[0].ends_with(" xdp_pass.o"), "{listing}");
}

#[test]
fn two_byte_orders_make_an_index_of_platforms() {
    let dir = tmpdir("image-index");
    let tar = build(
        &dir,
        "c.tar",
        &[&fx("xdp_counter.o"), &fx("xdp_counter.bpfeb.o")],
    );
    let v: Value =
        serde_json::from_str(&ok(&["image", "inspect", "--json", tar.to_str().unwrap()])).unwrap();
    assert_eq!(
        v["image"]["media_type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<(String, String)> = v["image"]["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["architecture"].as_str().unwrap().to_string(),
                m["endian"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let le = [
        "386", "amd64", "arm", "arm64", "loong64", "mips64le", "mipsle", "ppc64le", "riscv64",
    ];
    let be = ["mips", "mips64", "ppc64", "s390x"];
    let mut want: Vec<(String, String)> = le
        .iter()
        .map(|a| (a.to_string(), "little".to_string()))
        .collect();
    want.extend(be.iter().map(|a| (a.to_string(), "big".to_string())));
    assert_eq!(platforms, want);
    // skopeo sees the same list.
    if have_tool("skopeo", "two_byte_orders_make_an_index_of_platforms") {
        let o = tool_output("skopeo", &["inspect", "--raw", &oci_archive(&tar)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let raw: Value = serde_json::from_slice(&o.stdout).unwrap();
        let arches: Vec<&str> = raw["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(arches.len(), 13);
        assert!(arches.contains(&"s390x") && arches.contains(&"arm64"));
        assert!(raw["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["platform"]["os"] == "linux"));
    }
    // The same objects in the other order are refused when both are one byte order.
    let e = run(&[
        "image",
        "build",
        "-o",
        dir.join("bad.tar").to_str().unwrap(),
        &fx("xdp_counter.o"),
        &fx("xdp_pass.o"),
    ]);
    assert!(!e.status.success());
    assert!(stderr(&e).contains("both little-endian"), "{}", stderr(&e));
    assert!(!dir.join("bad.tar").exists(), "no partial output");
}

#[test]
fn building_twice_gives_the_same_bytes() {
    let dir = tmpdir("image-determinism");
    let a = build(&dir, "a.tar", &["--both-endian", &fx("xdp_counter.o")]);
    let b = build(&dir, "b.tar", &["--both-endian", &fx("xdp_counter.o")]);
    assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
}

/// The object a built image holds for one architecture, written out.
fn object_for(tar: &Path, arch: &str, out: &Path) -> String {
    let limits = bpfld::image::Limits::default();
    let img = bpfld::image::read_archive(&std::fs::read(tar).unwrap(), None, &limits).unwrap();
    let m = img
        .manifests
        .iter()
        .find(|m| m.architecture.as_deref() == Some(arch))
        .unwrap();
    std::fs::write(out, &m.object).unwrap();
    m.file_name.clone()
}

/// `--both-endian` writes the other byte order itself, global data and
/// legacy map definitions included: the same listings and the same
/// section contents as clang's build of the same source for that order.
#[test]
fn both_endian_matches_clangs_other_byte_order() {
    let test = "both_endian_matches_clangs_other_byte_order";
    let dir = tmpdir("image-both");
    let cases = [
        (
            "xdp_counter.o",
            "xdp_counter.bpfeb.o",
            "s390x",
            "xdp_counter.bpfeb.o",
        ),
        ("globals.o", "globals.bpfeb.o", "s390x", "globals.bpfeb.o"),
        (
            "legacy_maps.o",
            "legacy_maps.bpfeb.o",
            "s390x",
            "legacy_maps.bpfeb.o",
        ),
        ("globals.bpfeb.o", "globals.o", "amd64", "globals.bpfel.o"),
    ];
    for (input, clangs, arch, name) in cases {
        let tar = build(&dir, "both.tar", &["--both-endian", &fx(input)]);
        let ours = dir.join("ours.o");
        assert_eq!(object_for(&tar, arch, &ours), name);
        let theirs = fixture(clangs);
        for cmd in [&["inspect", "--json"][..], &["btf", "dump"][..]] {
            let listing = |p: &Path| {
                let mut a = cmd.to_vec();
                a.push(p.to_str().unwrap());
                ok(&a)
            };
            assert_eq!(listing(&ours), listing(&theirs), "{input} {cmd:?}");
        }
        let body = |p: &Path| {
            let text = ok(&["disasm", p.to_str().unwrap()]);
            text.lines().skip(2).collect::<Vec<_>>().join("\n")
        };
        assert_eq!(body(&ours), body(&theirs), "{input}");
        if have_tool("llvm-objdump-19", test) {
            for sec in [".data", ".rodata", ".data.custom", ".rodata.custom", "maps"] {
                let dump = |p: &Path| {
                    let o = tool_output("llvm-objdump-19", &["-s", "-j", sec, p.to_str().unwrap()]);
                    stdout(&o).lines().skip(3).collect::<Vec<_>>().join("\n")
                };
                assert_eq!(dump(&ours), dump(&theirs), "{input} {sec}");
            }
        }
    }
    // Without BTF, initialised data has no types to swap by: refused.
    if have_tool("llvm-objcopy-19", test) {
        let bare = dir.join("bare.o");
        let o = tool_output(
            "llvm-objcopy-19",
            &[
                "--remove-section=.BTF",
                "--remove-section=.BTF.ext",
                &fx("globals.o"),
                bare.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let e = run(&[
            "image",
            "build",
            "--both-endian",
            "-o",
            dir.join("g.tar").to_str().unwrap(),
            bare.to_str().unwrap(),
        ]);
        assert!(!e.status.success());
        assert!(stderr(&e).contains("section '.data'"), "{}", stderr(&e));
        assert!(stderr(&e).contains("no BTF to type it"), "{}", stderr(&e));
        assert!(!dir.join("g.tar").exists());
    }
}

#[test]
fn inspect_and_disasm_read_objects_from_images() {
    let dir = tmpdir("image-read");
    let tar = build(&dir, "c.tar", &["--tag", "v1", &fx("xdp_counter.o")]);
    let layout = dir.join("layout");
    untar(&tar, &layout);
    let file = fx("xdp_counter.o");
    let plain = ok(&["inspect", "--json", &file]);
    for arg in [
        oci_archive(&tar),
        format!("{}:v1", oci_archive(&tar)),
        format!("oci:{}", layout.display()),
        format!("oci:{}:v1", layout.display()),
    ] {
        assert_eq!(ok(&["inspect", "--json", &arg]), plain, "{arg}");
        let d = ok(&["disasm", &arg]);
        let want = ok(&["disasm", &file]);
        assert_eq!(
            d.lines().skip(2).collect::<Vec<_>>(),
            want.lines().skip(2).collect::<Vec<_>>(),
            "{arg}"
        );
        assert!(d.contains(&format!("{arg}:xdp_counter.o")), "{d}");
    }
    let e = run(&["inspect", &format!("oci:{}:nope", layout.display())]);
    assert!(!e.status.success());
    assert!(
        stderr(&e).contains("names no image 'nope'"),
        "{}",
        stderr(&e)
    );
    let text = ok(&["image", "inspect", tar.to_str().unwrap()]);
    assert!(text.contains("name: v1"), "{text}");
    assert!(text.contains("linux/amd64: manifest sha256:"), "{text}");
    assert!(
        text.contains(r#"io.ebpf.programs: {"xdp_count":"xdp"}"#),
        "{text}"
    );
    assert!(text.contains("xdp_count"), "{text}");
}

#[test]
fn a_tampered_archive_is_a_clear_error() {
    let dir = tmpdir("image-bad");
    let tar = build(&dir, "c.tar", &[&fx("xdp_pass.o")]);
    let mut bytes = std::fs::read(&tar).unwrap();
    const NEEDLE: &[u8] = br#""os":"linux","rootfs""#;
    let at = bytes
        .windows(NEEDLE.len())
        .position(|w| w == NEEDLE)
        .expect("the config names its os");
    bytes[at + 6] = b'L';
    let bad = dir.join("bad.tar");
    std::fs::write(&bad, &bytes).unwrap();
    let e = run(&["image", "inspect", bad.to_str().unwrap()]);
    assert!(!e.status.success());
    assert!(stderr(&e).contains("digest mismatch"), "{}", stderr(&e));
    let e = run(&["inspect", &oci_archive(&fixture("xdp_pass.o"))]);
    assert!(!e.status.success());
    assert!(stderr(&e).contains("not an OCI archive"), "{}", stderr(&e));
}

#[test]
fn programs_bpfman_cannot_load_are_named() {
    let dir = tmpdir("image-types");
    let e = run(&[
        "image",
        "build",
        "-o",
        dir.join("s.tar").to_str().unwrap(),
        &fx("net_progs.o"),
    ]);
    assert!(!e.status.success());
    assert!(
        stderr(&e).contains("bpfman has no program type"),
        "{}",
        stderr(&e)
    );
}

#[test]
fn map_labels_use_bpfmans_names() {
    let dir = tmpdir("image-maps");
    let tar = build(&dir, "m.tar", &[&fx("maps.o")]);
    let v: Value =
        serde_json::from_str(&ok(&["image", "inspect", "--json", tar.to_str().unwrap()])).unwrap();
    let maps = &v["image"]["manifests"][0]["labels"]["maps"];
    assert_eq!(maps["cpu_array"], "per_cpu_array");
    assert_eq!(maps["cpu_hash"], "per_cpu_hash");
    assert_eq!(maps["events"], "ringbuf");
    assert_eq!(maps["jump_table"], "prog_array");
    assert_eq!(maps["outer_hash"], "hash_of_maps");
    let programs = &v["image"]["manifests"][0]["labels"]["programs"];
    assert_eq!(programs["maps_main"], "xdp");
    // Data sections are not maps in the label.
    let tar = build(&dir, "g.tar", &[&fx("globals.o")]);
    let v: Value =
        serde_json::from_str(&ok(&["image", "inspect", "--json", tar.to_str().unwrap()])).unwrap();
    let maps = v["image"]["manifests"][0]["labels"]["maps"]
        .as_object()
        .unwrap();
    assert!(maps.keys().all(|k| !k.starts_with('.')), "{maps:?}");
}

/// Parses YAML with python3's yaml module into JSON; `None` (the test
/// skips) when python3-yaml is missing.
fn yaml_to_json(path: &Path, test: &str) -> Option<Value> {
    let o = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            path.to_str().unwrap(),
        ])
        .output()
        .ok()?;
    if !o.status.success() {
        eprintln!("SKIP {test}: python3 with yaml is needed: {}", stderr(&o));
        return None;
    }
    Some(serde_json::from_slice(&o.stdout).unwrap())
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// The composition's first priority and the verdicts every component
/// continues on become the ClusterBpfApplication's link; every field name
/// is one of bpfman.io/v1alpha1's (bpfman-operator apis/v1alpha1).
#[test]
fn a_composition_deploys_as_a_cluster_bpf_application() {
    let test = "a_composition_deploys_as_a_cluster_bpf_application";
    let dir = tmpdir("image-yaml");
    let comp = dir.join("comp.o");
    ok(&[
        "xdp",
        "compose",
        "-o",
        comp.to_str().unwrap(),
        &format!("{},priority=30,chain=pass+drop", fx("xdp_counter.o")),
        &format!("{},priority=20,chain=pass+tx", fx("xdp_pass.o")),
    ]);
    let tar = build(&dir, "comp.tar", &[comp.to_str().unwrap()]);
    let yaml = dir.join("app.yaml");
    ok(&[
        "image",
        "bpfman-yaml",
        "-o",
        yaml.to_str().unwrap(),
        "--url",
        "registry.example/team/xdp-Chain:v2",
        "--node-selector",
        "kubernetes.io/os=linux",
        "--node-selector",
        "role=edge",
        "--interface",
        "eth0",
        &oci_archive(&tar),
    ]);
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(text.contains("kind: ClusterBpfApplication\n"), "{text}");
    let Some(v) = yaml_to_json(&yaml, test) else {
        return;
    };
    assert_eq!(v["apiVersion"], "bpfman.io/v1alpha1");
    assert_eq!(v["metadata"]["name"], "xdp-chain");
    let spec = &v["spec"];
    for k in keys(spec) {
        assert!(
            [
                "nodeSelector",
                "globalData",
                "byteCode",
                "mapOwnerSelector",
                "programs"
            ]
            .contains(&k),
            "spec.{k}"
        );
    }
    assert_eq!(
        spec["nodeSelector"]["matchLabels"],
        serde_json::json!({"kubernetes.io/os": "linux", "role": "edge"})
    );
    assert_eq!(
        spec["byteCode"]["image"]["url"],
        "registry.example/team/xdp-Chain:v2"
    );
    for k in keys(&spec["byteCode"]["image"]) {
        assert!(
            ["url", "imagePullPolicy", "imagePullSecret"].contains(&k),
            "image.{k}"
        );
    }
    let programs = spec["programs"].as_array().unwrap();
    assert_eq!(programs.len(), 1);
    let p = &programs[0];
    assert_eq!(keys(p), ["name", "type", "xdp"]);
    assert_eq!(p["name"], "bpfld_xdp");
    assert_eq!(p["type"], "XDP");
    let links = p["xdp"]["links"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    for k in keys(&links[0]) {
        assert!(
            [
                "interfaceSelector",
                "networkNamespaces",
                "priority",
                "proceedOn"
            ]
            .contains(&k),
            "link.{k}"
        );
    }
    assert_eq!(
        links[0]["interfaceSelector"]["interfaces"],
        serde_json::json!(["eth0"])
    );
    assert_eq!(links[0]["priority"], 20, "the first component's priority");
    // Pass is the only verdict both components continue on.
    assert_eq!(
        links[0]["proceedOn"],
        serde_json::json!(["Pass", "DispatcherReturn"])
    );

    // Overrides, defaults, and the image's own programs for a plain object.
    ok(&[
        "image",
        "bpfman-yaml",
        "-o",
        yaml.to_str().unwrap(),
        "--url",
        "r/x:1",
        "--priority",
        "7",
        "--proceed-on",
        "drop+redirect",
        &fx("xdp_pass.o"),
    ]);
    let v = yaml_to_json(&yaml, test).unwrap();
    let link = &v["spec"]["programs"][0]["xdp"]["links"][0];
    assert_eq!(v["spec"]["nodeSelector"], serde_json::json!({}));
    assert_eq!(link["interfaceSelector"]["primaryNodeInterface"], true);
    assert_eq!(link["priority"], 7);
    assert_eq!(
        link["proceedOn"],
        serde_json::json!(["Drop", "ReDirect", "DispatcherReturn"])
    );
    let e = run(&[
        "image",
        "bpfman-yaml",
        "-o",
        dir.join("t.yaml").to_str().unwrap(),
        "--url",
        "r/x:1",
        &fx("tracing.o"),
    ]);
    assert!(!e.status.success());
    assert!(stderr(&e).contains("no XDP program"), "{}", stderr(&e));
    assert!(!dir.join("t.yaml").exists());
}

/// A network namespace for one test, deleted when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .output();
    }
}

fn in_ns(ns: &Netns, args: &[&str]) -> std::process::Output {
    bpfld_in_netns(&ns.0)
        .args(args)
        .output()
        .expect("ip netns exec bpfld")
}

/// `xdp compose` and `xdp attach` take components from images; a
/// composition shipped as an image attaches as it is.
#[test]
fn components_come_from_images() {
    let test = "components_come_from_images";
    let dir = tmpdir("image-attach");
    let counter = build(&dir, "c.tar", &["--tag", "v1", &fx("xdp_counter.o")]);
    let pass = build(&dir, "p.tar", &[&fx("xdp_pass.o")]);
    let c_arg = format!("{}:v1,priority=5", oci_archive(&counter));
    let p_arg = oci_archive(&pass);
    let comp = dir.join("comp.o");
    let text = ok(&[
        "xdp",
        "compose",
        "-o",
        comp.to_str().unwrap(),
        &c_arg,
        &p_arg,
    ]);
    assert!(
        text.contains(&format!(
            "oci-archive:{}:v1:xdp_count priority 5",
            counter.display()
        )),
        "{text}"
    );
    let composed = build(&dir, "comp.tar", &[comp.to_str().unwrap()]);

    if !bpf_allowed(test) || !have_tool("ip", test) {
        return;
    }
    let ns = Netns(format!("bpfld-img-{}", std::process::id()));
    let o = tool_output("ip", &["netns", "add", &ns.0]);
    assert!(o.status.success(), "ip netns add: {}", stderr(&o));
    let o = tool_output("ip", &["-n", &ns.0, "link", "set", "lo", "up"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = in_ns(&ns, &["xdp", "attach", "--dev", "lo", &c_arg, &p_arg]);
    assert!(o.status.success(), "attach: {}", stderr(&o));
    let o = in_ns(&ns, &["xdp", "status", "--dev", "lo"]);
    let status = stdout(&o);
    assert!(status.contains("'bpfld_xdp'"), "{status}");
    assert!(status.contains(":v1:xdp_count priority 5"), "{status}");
    assert!(status.contains("p.tar:xdp_pass priority 50"), "{status}");
    let composed_arg = oci_archive(&composed);
    let o = in_ns(
        &ns,
        &["xdp", "attach", "--dev", "lo", "--force", &composed_arg],
    );
    assert!(
        o.status.success(),
        "attach the composed image: {}",
        stderr(&o)
    );
    let status = stdout(&in_ns(&ns, &["xdp", "status", "--dev", "lo"]));
    assert!(status.contains("comp.tar:bpfld_xdp"), "{status}");
}

#[test]
fn run_reads_the_object_of_an_image() {
    let test = "run_reads_the_object_of_an_image";
    if !bpf_allowed(test) {
        return;
    }
    let dir = tmpdir("image-run");
    let tar = build(&dir, "c.tar", &[&fx("xdp_counter.o")]);
    let from_image: Value =
        serde_json::from_str(&ok(&["run", "--json", &oci_archive(&tar)])).unwrap();
    let from_file: Value =
        serde_json::from_str(&ok(&["run", "--json", &fx("xdp_counter.o")])).unwrap();
    assert_eq!(from_image["action"], from_file["action"]);
    assert_eq!(from_image["maps"], from_file["maps"]);
    assert_eq!(from_image["file"], oci_archive(&tar));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compose_writes_the_bpfman_manifest_of_the_composition() {
    let test = "compose_writes_the_bpfman_manifest_of_the_composition";
    let dir = tmpdir("compose-manifest");
    let out = dir.join("edge.o");
    let yaml = dir.join("edge.yaml");
    ok(&[
        "xdp",
        "compose",
        "-o",
        out.to_str().unwrap(),
        &format!("{}:xdp_count", fx("comp_count.o")),
        &format!("{},priority=20,chain=XDP_PASS+XDP_TX", fx("comp_mark.o")),
        "--bpfman-manifest",
        yaml.to_str().unwrap(),
        "--node-selector",
        "role=edge",
    ]);
    assert!(out.exists());
    let Some(v) = yaml_to_json(&yaml, test) else {
        return;
    };
    assert_eq!(v["kind"], "ClusterBpfApplication");
    assert_eq!(v["metadata"]["name"], "edge");
    assert_eq!(
        v["spec"]["byteCode"]["image"]["url"],
        "localhost/edge:latest"
    );
    assert_eq!(v["spec"]["nodeSelector"]["matchLabels"]["role"], "edge");
    let p = &v["spec"]["programs"][0];
    assert_eq!(p["name"], bpfld::compose::DISPATCHER);
    assert_eq!(p["type"], "XDP");
    // The composition's first component runs at priority 20 and the
    // whole continues past it only on what every component continues on.
    let link = &p["xdp"]["links"][0];
    assert_eq!(link["priority"], 20);
    let proceed: Vec<&str> = link["proceedOn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        proceed.contains(&"Pass") && !proceed.contains(&"Tx"),
        "{proceed:?}"
    );
    // The pull reference can be given; it needs the manifest.
    ok(&[
        "xdp",
        "compose",
        "-o",
        out.to_str().unwrap(),
        &format!("{}:xdp_count", fx("comp_count.o")),
        "--bpfman-manifest",
        yaml.to_str().unwrap(),
        "--bpfman-url",
        "quay.io/me/edge:v1",
    ]);
    let v = yaml_to_json(&yaml, test).unwrap();
    assert_eq!(v["spec"]["byteCode"]["image"]["url"], "quay.io/me/edge:v1");
    let o = run(&[
        "xdp",
        "compose",
        "-o",
        out.to_str().unwrap(),
        &fx("xdp_pass.o"),
        "--bpfman-url",
        "quay.io/me/edge:v1",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--bpfman-manifest"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn build_json_names_digests_as_inspect_does() {
    let dir = tmpdir("image-build-json");
    let out = dir.join("p.tar");
    let text = ok(&[
        "image",
        "build",
        "--json",
        "--both-endian",
        "--tag",
        "xdp-pass:v1",
        "-o",
        out.to_str().unwrap(),
        &fx("xdp_pass.o"),
    ]);
    let built: Value = serde_json::from_str(&text).unwrap();
    let seen: Value =
        serde_json::from_str(&ok(&["image", "inspect", "--json", out.to_str().unwrap()])).unwrap();
    assert_eq!(built["output"], out.to_str().unwrap());
    assert_eq!(built["tag"], "xdp-pass:v1");
    assert_eq!(built["digest"], seen["image"]["digest"]);
    let built_m = built["manifests"].as_array().unwrap();
    let seen_m = seen["image"]["manifests"].as_array().unwrap();
    assert_eq!(built_m.len(), seen_m.len());
    assert!(built_m.len() > 2, "an index for both byte orders");
    for (b, s) in built_m.iter().zip(seen_m) {
        for field in ["os", "architecture", "digest"] {
            assert_eq!(b[field], s[field], "{field}");
        }
    }
}
