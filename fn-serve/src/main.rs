fn main() {
    eprintln!("fn-serve: not built yet");
    std::process::exit(1);
}
