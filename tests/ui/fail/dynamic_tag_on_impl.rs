use ddspan::dd_span;

struct Handler;

#[dd_span(user.id = id)]
impl Handler {
    fn get(&self, id: u64) -> u64 {
        id
    }
}

fn main() {
    Handler.get(1);
}
