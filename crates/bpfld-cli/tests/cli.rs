//! The command line as a whole: version, completions and manual pages
//! (generated from the same grammar that parses the arguments).

mod common;
use common::*;

#[test]
fn version_names_the_crate_version() {
    assert_eq!(
        ok(&["--version"]),
        format!("bpfld {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_cover_every_command_in_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&["completions", shell]);
        for cmd in [
            "inspect", "disasm", "run", "link", "xdp", "btf", "image", "man",
        ] {
            assert!(script.contains(cmd), "{shell}: no '{cmd}' in\n{script}");
        }
        // Options of a nested command are completed too (fish spells
        // long options `-l resolve`).
        assert!(
            script.contains("--resolve") || script.contains("-l resolve"),
            "{shell}"
        );
    }
    assert!(ok(&["completions", "bash"]).contains("complete -F _bpfld"));
    let o = run(&["completions", "tcsh"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("tcsh"), "{}", stderr(&o));
}

#[test]
fn man_pages_render_with_man() {
    let page = ok(&["man", "link"]);
    assert!(page.contains(".TH bpfld-link 1"), "{page}");
    assert!(page.contains("\\-\\-resolve"), "{page}");
    assert!(ok(&["man", "xdp", "attach"]).contains(".TH bpfld-xdp-attach 1"));
    assert!(ok(&["man"]).contains(".TH bpfld 1"));
    let o = run(&["man", "lnik"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("'bpfld' has no command 'lnik'") && stderr(&o).contains("link"),
        "{}",
        stderr(&o)
    );
    let test = "man_pages_render_with_man";
    if !have_tool("man", test) {
        return;
    }
    let dir = tmpdir("man");
    let file = dir.join("bpfld-link.1");
    std::fs::write(&file, &page).unwrap();
    let o = std::process::Command::new("man")
        .args(["-l", file.to_str().unwrap()])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("NAME") && text.contains("bpfld-link"),
        "{text}"
    );
    assert!(text.contains("--resolve"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_output_that_is_an_input_is_refused_before_anything_is_written() {
    let dir = tmpdir("out-is-input");
    let a = dir.join("a.o");
    let b = dir.join("b.o");
    std::fs::copy(fixture("link_a.o"), &a).unwrap();
    std::fs::copy(fixture("link_b.o"), &b).unwrap();
    let original = std::fs::read(&a).unwrap();
    // The same file under another spelling, and through a hard link.
    let other = dir.join(".").join("a.o");
    let hard = dir.join("hard.o");
    std::fs::hard_link(&a, &hard).unwrap();
    for out in [&a, &other, &hard] {
        let o = run(&[
            "link",
            "-o",
            out.to_str().unwrap(),
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ]);
        assert!(!o.status.success(), "{}", out.display());
        assert!(
            stderr(&o).contains("writing the output would overwrite it"),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            std::fs::read(&a).unwrap(),
            original,
            "{} written",
            out.display()
        );
    }
    // A file filling a --resolve slot is an input too.
    let d = dir.join("d.o");
    std::fs::copy(fixture("res_dispatcher.o"), &d).unwrap();
    let c = dir.join("c.o");
    std::fs::copy(fixture("comp_count.o"), &c).unwrap();
    let o = run(&[
        "link",
        "-o",
        c.to_str().unwrap(),
        d.to_str().unwrap(),
        "--resolve",
        &format!("prog0={}:xdp_count", c.display()),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("overwrite"), "{}", stderr(&o));
    // xdp compose and btf dedup refuse it the same way.
    let o = run(&[
        "xdp",
        "compose",
        "-o",
        c.to_str().unwrap(),
        &format!("{}:xdp_count", c.display()),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("overwrite"), "{}", stderr(&o));
    let o = run(&[
        "btf",
        "dedup",
        "-o",
        a.to_str().unwrap(),
        a.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("overwrite"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&a).unwrap(), original);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn share_naming_no_map_is_an_error() {
    let dir = tmpdir("share-none");
    let out = dir.join("out.o");
    let o = run(&[
        "xdp",
        "compose",
        "-o",
        out.to_str().unwrap(),
        fixture("comp_count.o:xdp_count").to_str().unwrap(),
        fixture("comp_mark.o").to_str().unwrap(),
        "--share",
        "countr",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--share countr: no input or component has a map of that name")
            && stderr(&o).contains("counter"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    // The right name is accepted.
    ok(&[
        "xdp",
        "compose",
        "-o",
        out.to_str().unwrap(),
        fixture("comp_count.o:xdp_count").to_str().unwrap(),
        fixture("comp_mark.o").to_str().unwrap(),
        "--share",
        "counter",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `btf dump FILE [--json]` skips building the grammar; every other
/// spelling goes through it. Both must give the same listing, the same
/// errors and the same exit status.
#[test]
fn btf_dump_gives_the_same_result_on_every_spelling() {
    let file = fixture("comp_parse.o");
    let f = file.to_str().unwrap();
    let text = ok(&["btf", "dump", f]);
    assert!(text.starts_with("[1] "), "{text}");
    assert_eq!(ok(&["btf", "dump", "--", f]), text);
    let json = ok(&["btf", "dump", f, "--json"]);
    assert!(json.starts_with('{'), "{json}");
    assert_eq!(ok(&["btf", "dump", "--json", f]), json);
    assert_eq!(ok(&["btf", "dump", "--json", "--", f]), json);

    let missing = "no-such-object.o";
    let quick = run(&["btf", "dump", missing]);
    let parsed = run(&["btf", "dump", "--", missing]);
    assert_eq!(quick.status.code(), Some(1));
    assert_eq!(parsed.status.code(), Some(1));
    assert_eq!(stderr(&quick), stderr(&parsed));
    assert!(stderr(&quick).contains(missing), "{}", stderr(&quick));

    // Options stay the grammar's: help, and an unknown option refused.
    assert!(ok(&["btf", "dump", "--help"]).contains("Usage"));
    let o = run(&["btf", "dump", "--bogus"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["btf", "dump", f, "--bogus"]);
    assert_eq!(o.status.code(), Some(2));
}

/// The example lines of `bpfld COMMAND --help`.
fn examples(command: &[&str]) -> Vec<String> {
    let mut args = command.to_vec();
    args.push("--help");
    let help = ok(&args);
    let (_, rest) = help
        .split_once("\nExamples:\n")
        .unwrap_or_else(|| panic!("no examples in {help}"));
    rest.lines()
        .take_while(|l| !l.is_empty())
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn the_examples_in_help_run_on_fixtures() {
    // The file names the examples use, as fixtures of the same kind, in
    // a directory the examples run in (their outputs land there too).
    let dir = tmpdir("help-examples");
    for (name, fixture_name) in [
        ("prog.o", "xdp_counter.o"),
        ("main.o", "link_a.o"),
        ("lib.o", "link_b.o"),
        ("dispatcher.o", "res_dispatcher.o"),
        ("count.o", "comp_count.o"),
        ("mark.o", "comp_mark.o"),
        ("drop.o", "xdp_drop.o"),
        ("pass.o", "xdp_pass.o"),
    ] {
        std::os::unix::fs::symlink(fixture(fixture_name), dir.join(name)).unwrap();
    }
    // Commands whose examples need only files, in an order where each
    // finds what an earlier one wrote (image build writes prog.tar).
    let commands: [&[&str]; 9] = [
        &["link"],
        &["xdp", "compose"],
        &["btf", "dump"],
        &["btf", "dedup"],
        &["disasm"],
        &["image", "build"],
        &["inspect"],
        &["image", "inspect"],
        &["image", "bpfman-yaml"],
    ];
    let mut ran = Vec::new();
    for command in commands {
        let lines = examples(command);
        assert!((1..=2).contains(&lines.len()), "{command:?}: {lines:?}");
        for line in lines {
            // Plain words, at most a redirection of standard output.
            assert!(!line.contains(['"', '\'', '|', '$', '<']), "{line}");
            let mut words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[0], "bpfld");
            let redirect = words.iter().position(|w| *w == ">").map(|at| {
                let file = dir.join(words[at + 1]);
                words.truncate(at);
                file
            });
            // What a test cannot have: a vmlinux BTF on some kernels, an
            // OCI layout directory made by another tool.
            if words.contains(&VMLINUX) && !have_vmlinux("btf dump example") {
                continue;
            }
            if words.iter().any(|w| w.starts_with("oci:")) {
                continue;
            }
            let o = bpfld()
                .args(&words[1..])
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(o.status.success(), "{line}: {}", stderr(&o));
            let out = match &redirect {
                Some(file) => {
                    std::fs::write(file, &o.stdout).unwrap();
                    String::from_utf8(o.stdout).unwrap()
                }
                None => stdout(&o),
            };
            if let Some(at) = words.iter().position(|w| *w == "-o") {
                let written = dir.join(words[at + 1]);
                let bytes = std::fs::read(&written).unwrap_or_else(|e| panic!("{line}: {e}"));
                assert!(!bytes.is_empty(), "{line}");
                if words[at + 1].ends_with(".o") {
                    assert!(bpfld::Object::parse(&bytes).is_ok(), "{line}");
                }
            }
            if words.contains(&"--json") {
                let v: serde_json::Value =
                    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{line}: not JSON ({e})"));
                assert!(v.is_object() || v.is_array(), "{line}");
            } else if !matches!(words[1], "link" | "btf" | "image")
                || words.contains(&"--print-map")
            {
                assert!(!out.is_empty(), "{line}: printed nothing");
            }
            ran.push(line);
        }
    }
    // Every example of link, xdp compose and btf dump ran (the vmlinux
    // one where the kernel has it).
    let of = |prefix: &str| ran.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(of("bpfld link "), 2, "{ran:?}");
    assert_eq!(of("bpfld xdp compose "), 2, "{ran:?}");
    assert!(of("bpfld btf dump ") >= 1, "{ran:?}");
    assert!(ran.len() >= 14, "{ran:?}");
}
