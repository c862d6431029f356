use ddspan::dd_span;

trait Store {
    #[dd_span]
    fn load(&self) -> u32;
}

fn main() {}
