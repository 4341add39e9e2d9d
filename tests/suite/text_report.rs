//! The readable report names the full listener and the leaking process.

use crate::util::netns::netns_or_skip;
use crate::util::stdout_of;

#[test]
fn text_report_names_the_full_listener_and_the_leaking_process() {
    let Some(mut ns) = netns_or_skip("text_report_names_the_full_listener_and_the_leaking_process")
    else {
        return;
    };
    ns.lab(&["noaccept", "--addr", "127.0.0.1:5000"]);
    let leak = ns.lab(&["leak", "--addr", "127.0.0.1:5001", "--count", "200"]);
    let text = stdout_of(
        "sockscope report --samples 1",
        &ns.sockscope(&["report", "--samples", "1"]),
    );
    assert!(
        text.contains("127.0.0.1:5000"),
        "the full listener is not named:\n{text}"
    );
    assert!(
        text.contains("leaky"),
        "the leaking process is not named:\n{text}"
    );
    let pid = leak.pid("leaky").to_string();
    assert!(
        text.contains(&pid),
        "the leaking process's pid {pid} is not given:\n{text}"
    );
}
