//! The families of what operators asked and what holds READY=1: the maintenance pause, a
//! fence on demand, the holds and the fence budget (docs/METRICS.md).

use super::{flag, Out};
use crate::status::Status;

pub(super) fn render(out: &mut Out, s: &Status) {
    out.family(
        "wdfeed_paused",
        "gauge",
        "1 while a maintenance pause (wdfeed pause) keeps failing checks from fencing; the freeze guard still fences.",
    );
    out.sample("wdfeed_paused", &[], flag(s.pause.is_some()));
    out.family(
        "wdfeed_pause_remaining_seconds",
        "gauge",
        "Seconds until the maintenance pause ends by itself (0: no pause).",
    );
    out.sample(
        "wdfeed_pause_remaining_seconds",
        &[],
        s.pause.as_ref().map_or(0.0, |p| p.left_s),
    );
    if let Some(p) = &s.pause {
        out.family(
            "wdfeed_pause_info",
            "gauge",
            "Always 1 while paused: who asked (uid, pid) and why.",
        );
        let (uid, pid) = (p.uid.to_string(), p.pid.to_string());
        out.sample(
            "wdfeed_pause_info",
            &[("uid", &uid), ("pid", &pid), ("reason", &p.reason)],
            1.0,
        );
    }
    if let Some(f) = s.fence.as_ref().filter(|f| f.check == "operator") {
        out.family(
            "wdfeed_operator_fence_info",
            "gauge",
            "Always 1 once an operator fenced the node (wdfeed fence): the reason, and who asked.",
        );
        out.sample(
            "wdfeed_operator_fence_info",
            &[("reason", &f.evidence)],
            1.0,
        );
    }
    out.family(
        "wdfeed_rejoin_held",
        "gauge",
        "1 while READY=1 is held until wdfeed rejoin-now; `by` says what holds it (fence-budget, kernel-command-line).",
    );
    match &s.hold {
        Some(h) => out.sample("wdfeed_rejoin_held", &[("by", &h.by)], 1.0),
        None => out.sample("wdfeed_rejoin_held", &[], 0.0),
    }
    if let Some(b) = &s.budget {
        out.family(
            "wdfeed_rejoin_budget_fences",
            "gauge",
            "rejoin-budget.fences: boots in a row that ended armed within the window before READY=1 is held (0: off).",
        );
        out.sample("wdfeed_rejoin_budget_fences", &[], f64::from(b.fences));
        out.family(
            "wdfeed_rejoin_budget_recent_fences",
            "gauge",
            "Boots in a row that ended armed (fenced, crashed, lost power) within the window, as counted at start-up.",
        );
        out.sample(
            "wdfeed_rejoin_budget_recent_fences",
            &[],
            b.recent.len() as f64,
        );
        out.family(
            "wdfeed_rejoin_budget_fence_timestamp_seconds",
            "gauge",
            "When each boot counted ended: the fence's time, or when the next boot found the record; seconds since the epoch.",
        );
        for e in &b.recent {
            out.sample(
                "wdfeed_rejoin_budget_fence_timestamp_seconds",
                &[("boot", &e.boot)],
                e.at as f64,
            );
        }
    }
}
