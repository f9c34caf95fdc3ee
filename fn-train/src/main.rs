fn main() {
    eprintln!("fn-train: not built yet");
    std::process::exit(1);
}
