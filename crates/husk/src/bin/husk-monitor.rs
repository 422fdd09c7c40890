//! The resident loop of a detached container's monitor as a binary of its own (see
//! husk_containers::watch): a few pages of code instead of husk's, for each idle container.
#![forbid(unsafe_code)]

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let code = match argv.get(1).map(String::as_str) {
        Some(husk_containers::watch::VERB) => husk_containers::watch::main(&argv),
        _ => {
            eprintln!("husk-monitor: started by husk for a detached container, not by hand");
            125
        }
    };
    std::process::exit(code);
}
