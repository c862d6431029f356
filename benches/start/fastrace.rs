//! Process start of a program that links fastrace (and so fastant, whose
//! TSC calibration runs in a constructor before `main`): the peer.

fn main() {
    // Keeps fastrace linked.
    std::hint::black_box(fastrace::collector::SpanContext::current_local_parent());
}
