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
