//! The log filter of the running process, which `rabbitmqctl set_log_level` changes. The
//! `warren` binary installs the setter when it sets up logging; a broker embedded in another
//! process (the tests' in-process brokers) has none.

use std::sync::OnceLock;

type Setter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static SETTER: OnceLock<Setter> = OnceLock::new();

/// Install the function that replaces the filter with new directives (once per process).
pub fn install(set: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) {
    let _ = SETTER.set(Box::new(set));
}

/// Replace the filter with `directives` (`debug`, `warn`, `off`, per-module ones...).
pub fn set_filter(directives: &str) -> Result<(), String> {
    match SETTER.get() {
        Some(set) => set(directives),
        None => Err("this process's log level cannot be changed".into()),
    }
}
