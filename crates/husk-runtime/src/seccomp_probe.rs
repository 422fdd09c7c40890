//! What the linked libseccomp and this kernel accept, asked at run time (for `husk features`):
//! the static archive husk links decides which architectures and flags a profile may use, not
//! the lists husk-spec knows names for.

/// The linked library's version, as it reports itself.
pub fn version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "unknown".into())
}

/// libseccomp's API level: what the library and the running kernel support together.
pub fn api_level() -> u32 {
    libseccomp::get_api()
}

/// The architectures the linked libseccomp can put in a filter (a newer name than the library
/// is refused by seccomp_arch_add).
pub fn archs() -> Vec<&'static str> {
    use libseccomp::{ScmpAction, ScmpArch, ScmpFilterContext};
    use std::str::FromStr;
    husk_spec::seccomp::ARCHES
        .iter()
        .copied()
        .filter(|name| {
            let (Ok(arch), Ok(mut ctx)) = (
                ScmpArch::from_str(name),
                ScmpFilterContext::new(ScmpAction::Allow),
            ) else {
                return false;
            };
            ctx.add_arch(arch).is_ok()
        })
        .collect()
}

/// The flags libseccomp sets on a filter here: it checks the kernel for each, and knows
/// WAIT_KILLABLE_RECV only from 2.6 (where `seccomp::build` refuses it too).
pub fn flags() -> Vec<&'static str> {
    use libseccomp::{ScmpAction, ScmpFilterContext, ScmpVersion};
    let Ok(mut ctx) = ScmpFilterContext::new(ScmpAction::Allow) else {
        return Vec::new();
    };
    let v26 = ScmpVersion::current().is_ok_and(|v| (v.major, v.minor) >= (2, 6));
    husk_spec::seccomp::FLAGS
        .iter()
        .copied()
        .filter(|f| match *f {
            "SECCOMP_FILTER_FLAG_TSYNC" => ctx.set_ctl_tsync(true).is_ok(),
            "SECCOMP_FILTER_FLAG_LOG" => ctx.set_ctl_log(true).is_ok(),
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => ctx.set_ctl_ssb(true).is_ok(),
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => v26 && ctx.set_ctl_waitkill(true).is_ok(),
            _ => false,
        })
        .collect()
}
