//! The verifier's log digested: the instruction it stopped at, the reason,
//! and the last lines.

/// Verifier log lines shown on a rejection.
pub const VERIFIER_TAIL_LINES: usize = 20;

/// The useful part of a verifier rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierReport {
    /// The last instruction the verifier printed, e.g. `0: (61) r2 = *(u32 *)(r1 +4096)`.
    pub instruction: Option<String>,
    /// The line that says why, e.g. `invalid bpf_context access off=4096 size=4`.
    pub reason: Option<String>,
    /// The last [`VERIFIER_TAIL_LINES`] lines of the log.
    pub tail: Vec<String>,
}

/// Digests a verifier log into the instruction it stopped at, the reason,
/// and the last lines.
pub fn digest_verifier_log(log: &str) -> VerifierReport {
    let lines: Vec<&str> = log.lines().map(str::trim_end).collect();
    // Trailing blank lines carry nothing.
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let lines = &lines[..end];
    let tail: Vec<String> = lines[lines.len().saturating_sub(VERIFIER_TAIL_LINES)..]
        .iter()
        .map(|l| l.to_string())
        .collect();
    let insn_at = lines.iter().rposition(|l| is_insn_line(l));
    let mut instruction = insn_at.map(|i| insn_text(lines[i]));
    // The reason follows the last instruction printed; without one, it is
    // the last line that is not the statistics footer.
    let reason = match insn_at {
        Some(i) => lines[i + 1..]
            .iter()
            .find(|l| !l.trim().is_empty() && !is_insn_line(l) && !is_stats_line(l))
            .map(|l| l.to_string()),
        None => lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty() && !is_stats_line(l))
            .map(|l| l.to_string()),
    };
    // "infinite loop detected at insn 18", "... from insn 3 to 1": the
    // instruction the reason names, when the log printed it.
    if let Some(n) = reason.as_deref().and_then(named_insn) {
        let prefix = format!("{n}: (");
        if let Some(l) = lines.iter().rev().find(|l| l.starts_with(&prefix)) {
            instruction = Some(insn_text(l));
        }
    }
    VerifierReport {
        instruction,
        reason,
        tail,
    }
}

/// The number after the first "insn " in a verifier message.
fn named_insn(reason: &str) -> Option<u32> {
    let rest = &reason[reason.find("insn ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// An instruction line without the register state the verifier appends
/// (after "  ; " at log level 2, or directly as " 9: R0=..." when a jump's
/// target state follows on the same line).
fn insn_text(line: &str) -> String {
    let mut end = line.find("  ;").unwrap_or(line.len());
    // Skip "N: (" itself, then look for a state " M: R".
    let body_start = line.find(": (").map_or(0, |i| i + 3);
    let bytes = line.as_bytes();
    let mut i = body_start;
    while i < end {
        if bytes[i] == b' ' {
            let digits = bytes[i + 1..end]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 0 && line[i + 1 + digits..end].starts_with(": R") {
                end = i;
                break;
            }
        }
        i += 1;
    }
    line[..end].trim_end().to_string()
}

/// `12: (61) r2 = ...`: an instruction as the verifier prints it (state
/// lines such as `12: R1=ctx()` have no opcode in parentheses).
fn is_insn_line(l: &str) -> bool {
    let Some((num, rest)) = l.split_once(": (") else {
        return false;
    };
    !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit())
        && rest.len() > 3
        && rest.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit)
        && rest.as_bytes()[2] == b')'
}

fn is_stats_line(l: &str) -> bool {
    l.starts_with("processed ")
        || l.starts_with("verification time")
        || l.starts_with("stack depth")
        || l.starts_with("-- END PROG LOAD LOG --")
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real log of a ctx read out of bounds (kernel 6.x, level 1+4).
    const LOG: &str = "func#0 @0\n0: R1=ctx() R10=fp0\n; int bad(struct xdp_md *ctx) @ x.c:3\n\
0: (61) r0 = *(u32 *)(r1 +4096)\ninvalid bpf_context access off=4096 size=4\n\
processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n\n";

    #[test]
    fn digest_finds_instruction_and_reason() {
        let r = digest_verifier_log(LOG);
        assert_eq!(
            r.instruction.as_deref(),
            Some("0: (61) r0 = *(u32 *)(r1 +4096)")
        );
        assert_eq!(
            r.reason.as_deref(),
            Some("invalid bpf_context access off=4096 size=4")
        );
        assert_eq!(r.tail.len(), 6);
        assert!(r.tail.last().unwrap().starts_with("processed 1 insns"));
    }

    #[test]
    fn digest_keeps_only_the_tail() {
        let log: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let r = digest_verifier_log(&log);
        assert_eq!(r.tail.len(), VERIFIER_TAIL_LINES);
        assert_eq!(r.tail[0], "line 80");
        assert_eq!(r.instruction, None);
        assert_eq!(r.reason.as_deref(), Some("line 99"));
    }

    #[test]
    fn reason_naming_an_insn_picks_that_insn() {
        let log = "17: (b4) w0 = 2                       ; R0=2\n\
18: (ae) if w2 < w1 goto pc-10 9: R0=2 R1=scalar()\n\
17: (b4) w0 = 2\ninfinite loop detected at insn 18\ncur state: R0=2\n";
        let r = digest_verifier_log(log);
        assert_eq!(
            r.reason.as_deref(),
            Some("infinite loop detected at insn 18")
        );
        assert_eq!(
            r.instruction.as_deref(),
            Some("18: (ae) if w2 < w1 goto pc-10")
        );
        assert_eq!(
            insn_text("16: (61) r2 = *(u32 *)(r10 -4)        ; R2=1"),
            "16: (61) r2 = *(u32 *)(r10 -4)"
        );
    }

    #[test]
    fn state_lines_are_not_instructions() {
        assert!(!is_insn_line("0: R1=ctx() R10=fp0"));
        assert!(is_insn_line("12: (b7) r0 = 2"));
        assert!(!is_insn_line("(b7) r0 = 2"));
    }
}
