//! Progress bars on a terminal (indicatif): one per table being loaded,
//! with rows, rows/s and, when the central estimated the table's size, a
//! bar and an ETA; a spinner otherwise.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Begin, Observer};

const WITH_TOTAL: &str =
    "{prefix:.bold} [{bar:30}] {human_pos}/~{human_len} rows, {per_sec}, ETA {eta} (estimate)";
const WITHOUT_TOTAL: &str = "{spinner} {prefix:.bold} {human_pos} rows, {per_sec}, {elapsed}";

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
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ProgressBar>> {
        self.bars.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
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
