#[cfg(not(loom))]
mod model;
#[cfg(not(loom))]
mod unit;

#[cfg(loom)]
mod loom;

/// Marks the panics that tests cause on purpose, so that the hook below keeps them off stderr.
#[cfg(not(loom))]
const DELIBERATE: &str = "deliberate panic";

/// Installs (once) a panic hook that stays silent for [`DELIBERATE`] panics and reports every
/// other panic (a failing assertion, say) as usual.
#[cfg(not(loom))]
fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if !message.is_some_and(|m| m.contains(DELIBERATE)) {
                report(info);
            }
        }));
    });
}
