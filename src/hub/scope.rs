//! Row filters, as the hub applies them: what a node may see and write.
//!
//! A `[[table]] filter` on the hub is a condition on the central table's
//! columns whose `:name` parameters bind the values a node's credential
//! carries (`token create --tenant T --param k=v`; `:tenant` is the tenant).
//! The parser, the evaluator and the SQL rendering live in
//! [`edgesync_core::filter`], shared with the engine and the adapters, so
//! the hub, a direct-mode edge and the central's SQL agree on what a scope
//! holds. The hub hands each node's bound scope to the central adapter
//! (`pull_scoped`/`push_scoped`: the filter is evaluated in SQL, rows that
//! left the scope travel as move-outs, pushes outside it are refused as
//! conflicts), and also checks it itself as defence in depth: every row it
//! hands out, every row a node pushes and the central row it would replace.
//!
//! The subset of SQL understood is documented in [`edgesync_core::filter`];
//! the hub refuses to start on anything else rather than guess.

pub use edgesync_core::filter::{Filter, Scope as Bound};
