//! Progress bars on a terminal (indicatif): one per table being loaded,
//! with rows, rows/s and, when the central estimated the table's size, a
//! bar and an ETA; a spinner otherwise.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::{Begin, Observer};

const WITH_TOTAL: &str =
    "{prefix:.bold} [{bar:30}] {human_pos}/~{human_len} rows, {rate}, ETA {eta} (estimate)";
const WITHOUT_TOTAL: &str = "{spinner} {prefix:.bold} {human_pos} rows, {rate}, {elapsed}";

/// See the module documentation.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<u64, ProgressBar>>,
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Bars {
    /// Bars drawn on stderr.
    pub fn new() -> Bars {
        Bars::drawing_to(ProgressDrawTarget::stderr())
    }

    fn drawing_to(target: ProgressDrawTarget) -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ProgressBar>> {
        self.bars.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|s| {
            // Whole rows per second (indicatif's own `{per_sec}` shows four
            // decimals).
            s.progress_chars("=> ")
                .with_key("rate", |state: &ProgressState, w: &mut dyn Write| {
                    let _ = write!(w, "{:.0} rows/s", state.per_sec());
                })
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Observer for Bars {
    fn begin(&self, id: u64, begin: Begin) {
        // Incremental pulls are short; only initial loads get a bar.
        if !begin.initial {
            return;
        }
        let bar = match begin.total {
            Some(total) => ProgressBar::new(total).with_style(style(WITH_TOTAL)),
            None => ProgressBar::no_length().with_style(style(WITHOUT_TOTAL)),
        };
        bar.set_prefix(format!("{} ({})", begin.table, begin.node));
        let bar = self.multi.add(bar);
        bar.tick();
        self.bars().insert(id, bar);
    }

    fn advance(&self, id: u64, rows: u64) {
        if let Some(bar) = self.bars().get(&id) {
            bar.inc(rows);
            // The estimate was low: keep the bar honest rather than past 100%.
            if let Some(len) = bar.length() {
                if bar.position() > len {
                    bar.set_length(bar.position());
                }
            }
        }
    }

    fn end(&self, id: u64) {
        if let Some(bar) = self.bars().remove(&id) {
            if bar.length().is_some() {
                bar.set_length(bar.position());
            }
            bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(total: Option<u64>) -> Begin {
        Begin {
            node: "a".into(),
            table: "items".into(),
            initial: true,
            total,
        }
    }

    #[test]
    fn a_low_estimate_grows_with_the_rows_and_incremental_pulls_get_no_bar() {
        let bars = Bars::drawing_to(ProgressDrawTarget::hidden());
        bars.begin(1, load(Some(100)));
        bars.advance(1, 60);
        bars.advance(1, 90);
        {
            let all = bars.bars();
            let bar = all.get(&1).expect("a bar for the initial load");
            assert_eq!(bar.position(), 150);
            assert_eq!(bar.length(), Some(150), "never past 100%");
        }
        bars.end(1);
        assert!(bars.bars().is_empty());
        bars.begin(
            2,
            Begin {
                initial: false,
                ..load(None)
            },
        );
        assert!(bars.bars().is_empty(), "no bar for an incremental pull");
        bars.advance(2, 10);
        bars.end(2);
    }
}
