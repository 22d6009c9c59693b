//! Replays every committed fuzz finding, `fuzz/regressions/<target>/*`,
//! through the fuzz targets' own code (`fuzz/src/lib.rs`, included below),
//! so a normal `cargo test` guards each fix without running a fuzzer. It
//! runs among the crate's unit tests because the targets drive layers that
//! are not public (`read`, `write`).
//!
//! Each input must finish without a panic (the targets' round-trip
//! assertions included), within a time bound, and without allocating out
//! of proportion to its size; the same limits the fuzzers run with
//! (`-timeout`, `-rss_limit_mb`), made observable here by a counting
//! allocator. Each input runs in a child process (this binary again), so a
//! hang is killed and an aborting allocation stays contained, and so does
//! every other measurement: in the parent, the crate's other tests
//! allocate alongside. See FUZZING.md.

#[path = "../../../../fuzz/src/lib.rs"]
#[allow(dead_code)] // the fuzz-only parts
mod harness;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A fuzz target's body: raw input in, panics on a bug.
type Target = fn(&[u8]);

/// The fuzz targets by directory name (`fuzz/fuzz_targets/<name>.rs`).
const TARGETS: &[(&str, Target)] = &[
    ("elf", harness::elf),
    ("insn", harness::insn),
    ("btf", harness::btf),
    ("btf_view", harness::btf_view),
    ("btf_ext", harness::btf_ext),
    ("link", harness::link),
    ("pcap", harness::pcap),
    ("image", harness::image),
];

/// CPU time per input, in an unoptimised test build: healthy inputs take
/// milliseconds, so this only trips on work that grows faster than the
/// input. CPU time rather than wall time, because the crate's other unit
/// tests run alongside on a machine that may be busy.
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// Wall time after which a call is taken for a hang.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// CPU time the calling thread has used (Linux: `/proc/thread-self/schedstat`,
/// nanoseconds on the CPU first); `None` where that is not available.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Peak heap growth allowed while one input runs: a fixed allowance plus
/// a multiple of the input size (listings, JSON documents).
fn memory_limit(input_len: usize) -> usize {
    (64usize << 20).saturating_add(input_len.saturating_mul(512))
}

/// Counts live heap bytes and their peak, so a test can see how much one
/// call allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call forwards to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The counters are process-wide: tests that measure take turns.
static MEASURING: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    v.sort();
    v
}

/// Runs `target` on `data`; `None` when it ends in bounds, otherwise what
/// went wrong. The call runs on its own thread so that a hang is reported
/// after [`HANG_LIMIT`] instead of stalling the test (the thread is left
/// behind; the process ends it).
fn replay(target: Target, data: &[u8]) -> Option<String> {
    let data = data.to_vec();
    let len = data.len();
    let (done, outcome) = std::sync::mpsc::channel();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let start = Instant::now();
    std::thread::spawn(move || {
        let cpu_start = thread_cpu_time();
        let result = std::panic::catch_unwind(|| target(&data)).map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        });
        let cpu = cpu_start
            .zip(thread_cpu_time())
            .map(|(a, b)| b.saturating_sub(a));
        let _ = done.send((result, cpu));
    });
    let (result, cpu) = match outcome.recv_timeout(HANG_LIMIT) {
        Ok(sent) => sent,
        Err(_) => return Some(format!("did not finish within {HANG_LIMIT:?}")),
    };
    let took = cpu.unwrap_or_else(|| start.elapsed());
    let grown = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    if let Err(msg) = result {
        return Some(format!("panicked: {msg}"));
    }
    if took > TIME_LIMIT {
        return Some(format!("took {took:?} of CPU (limit {TIME_LIMIT:?})"));
    }
    if grown > memory_limit(len) {
        return Some(format!(
            "allocated {grown} bytes at peak for a {len}-byte input (limit {})",
            memory_limit(len)
        ));
    }
    None
}

/// Replays every file of `inputs` through `target`, collecting failures so
/// one run names them all.
fn replay_all(target_name: &str, target: Target, inputs: &[PathBuf]) -> Vec<String> {
    let _turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut failures = Vec::new();
    for path in inputs {
        let data = std::fs::read(path).expect("read regression input");
        if let Some(what) = replay(target, &data) {
            let shown = path.strip_prefix(root()).unwrap_or(path);
            failures.push(format!("{target_name} {}: {what}", shown.display()));
        }
    }
    failures
}

/// Set in the child process that replays one input: `target<TAB>path`.
const CHILD_ENV: &str = "BPFLD_FUZZ_REPLAY";
const RESULT_MARK: &str = "replay result: ";

/// Replays one regression input in a child process (this test binary,
/// running [`replay_child`]), so that a hang can be killed and an abort
/// (allocation failure) or a leftover thread does not take the other
/// inputs down with it or skew their measurements.
fn replay_isolated(target_name: &str, path: &Path) -> Option<String> {
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            &test_name("replay_child"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{target_name}\t{}", path.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("re-run the test binary");
    // The child's own limit plus room for its start-up.
    let deadline = Instant::now() + HANG_LIMIT + Duration::from_secs(5);
    loop {
        if child.try_wait().expect("wait for child").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Some(format!("did not finish within {HANG_LIMIT:?} (killed)"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("child output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout
        .lines()
        .find_map(|l| l.split_once(RESULT_MARK).map(|(_, what)| what))
    {
        Some("ok") => None,
        Some(what) => Some(what.to_string()),
        None => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            Some(format!(
                "crashed ({}): {}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ))
        }
    }
}

/// The full name of test `name` of this file in the test binary.
fn test_name(name: &str) -> String {
    let here = module_path!();
    let here = here.split_once("::").map_or(here, |(_, rest)| rest);
    format!("{here}::{name}")
}

/// Set in the child process that runs one test alone.
const ALONE_ENV: &str = "BPFLD_FUZZ_ALONE";

/// Runs test `name` alone in a child process (this binary, one thread), so
/// the heap counter sees only its own allocations; true in that child,
/// where the caller goes on with the test's body.
fn alone(name: &str) -> bool {
    if std::env::var_os(ALONE_ENV).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            &test_name(name),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ALONE_ENV, "1")
        .output()
        .expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name}, run alone, failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

#[test]
fn replay_child() {
    // Only does something when started by `replay_isolated`.
    let Ok(job) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (name, path) = job.split_once('\t').expect("target<TAB>path");
    let (_, target) = TARGETS
        .iter()
        .find(|(t, _)| *t == name)
        .expect("known target");
    let data = std::fs::read(path).expect("read regression input");
    let _turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let what = replay(*target, &data);
    println!("{RESULT_MARK}{}", what.as_deref().unwrap_or("ok"));
    // Leave at once: a call that did not finish is still running.
    std::process::exit(0);
}

#[test]
fn every_regression_input_ends_in_bounds() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, _) in TARGETS {
        for path in files_in(&root().join("fuzz/regressions").join(name)) {
            count += 1;
            if let Some(what) = replay_isolated(name, &path) {
                let shown = path.strip_prefix(root()).unwrap_or(&path);
                failures.push(format!("{name} {}: {what}", shown.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} regression inputs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn regression_directories_name_fuzz_targets() {
    // A misspelt directory would be skipped silently by the replay above.
    let dir = root().join("fuzz/regressions");
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions exists") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/regressions/{name} is not a fuzz target"
            );
        }
    }
}

#[test]
fn seed_fixtures_run_through_the_targets_in_bounds() {
    if !alone("seed_fixtures_run_through_the_targets_in_bounds") {
        return;
    }
    // The committed fixtures and damaged files seed the fuzzers; the
    // targets' assertions (round trips) must already hold on them.
    let fixtures = root().join("fixtures");
    let mut objects = files_in(&fixtures);
    objects.retain(|p| p.extension().is_some_and(|e| e == "o"));
    let damaged = files_in(&fixtures.join("damaged"));
    assert!(!objects.is_empty() && !damaged.is_empty());
    let mut failures = replay_all("elf", harness::elf, &objects);
    failures.extend(replay_all("elf", harness::elf, &damaged));
    // Every fixture's bytes as instruction slots too (both byte orders).
    failures.extend(replay_all("insn", harness::insn, &objects));
    let raw_btf: Vec<PathBuf> = damaged
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "btf"))
        .cloned()
        .collect();
    failures.extend(replay_all("btf", harness::btf, &raw_btf));
    // The view against the reader: raw BTF, objects and damaged objects.
    failures.extend(replay_all("btf_view", harness::btf_view, &raw_btf));
    failures.extend(replay_all("btf_view", harness::btf_view, &objects));
    failures.extend(replay_all("btf_view", harness::btf_view, &damaged));
    // Pairs to link, joined as the link target splits them.
    let pairs = std::env::temp_dir().join(format!("bpfld-fuzz-pairs-{}", std::process::id()));
    std::fs::create_dir_all(&pairs).expect("temp dir");
    let mut joined = Vec::new();
    for (a, b) in [
        ("link_a.o", "link_b.o"),
        ("xdp_pass.o", "calls.o"),
        ("maps.o", "core.o"),
    ] {
        let mut data = std::fs::read(fixtures.join(a)).expect("fixture");
        data.extend_from_slice(harness::LINK_SEPARATOR);
        data.extend(std::fs::read(fixtures.join(b)).expect("fixture"));
        let path = pairs.join(format!("{a}+{b}"));
        std::fs::write(&path, data).expect("write pair");
        joined.push(path);
    }
    failures.extend(replay_all("link", harness::link, &joined));
    // The committed captures seed the pcap target.
    let captures = files_in(&fixtures.join("pcap"));
    assert!(!captures.is_empty());
    failures.extend(replay_all("pcap", harness::pcap, &captures));
    let _ = std::fs::remove_dir_all(&pairs);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_counting_allocator_sees_a_large_allocation() {
    if !alone("the_counting_allocator_sees_a_large_allocation") {
        return;
    }
    // The memory bound above is only as good as the counter.
    let _turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let big = |_: &[u8]| {
        let v = vec![1u8; 200 << 20];
        assert_eq!(v.len(), 200 << 20);
    };
    let what = replay(big, b"tiny").expect("200 MiB for 4 bytes is over the limit");
    assert!(what.starts_with("allocated "), "{what}");
    assert_eq!(replay(|_| {}, b"tiny"), None);
}

#[test]
fn the_cpu_clock_sees_a_busy_thread() {
    // The time bound above is only as good as the clock.
    let before = thread_cpu_time().expect("/proc/thread-self/schedstat");
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < Duration::from_millis(200) {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
    let used = thread_cpu_time().unwrap() - before;
    // Spinning is CPU time, unless the machine starved this thread.
    assert!(
        used > Duration::from_millis(20),
        "{used:?} of CPU for 200 ms of spinning"
    );
    assert!(
        used <= start.elapsed() + Duration::from_millis(20),
        "{used:?}"
    );
}
