//! aggregator (under construction)
fn main() {
    eprintln!("aggregator: not built yet");
    std::process::exit(1);
}
