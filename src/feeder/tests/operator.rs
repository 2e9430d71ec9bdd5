//! The feeder and what operators ask: a fence now, a maintenance pause. Both reach it
//! through two atomic words; the freeze guard fences through a pause.

use super::*;

fn with_operator(r: Rig) -> (Rig, Arc<Operator>) {
    let op = Arc::new(Operator::default());
    let Rig {
        feeder,
        io,
        leases,
        fence,
    } = r;
    let feeder = feeder.with_operator(Arc::clone(&op));
    (
        Rig {
            feeder,
            io,
            leases,
            fence,
        },
        op,
    )
}

#[test]
fn a_fence_asked_by_an_operator_fences_at_the_next_tick_while_every_check_passes() {
    let (mut r, op) = with_operator(rig(1));
    r.leases.renew(0, S(1000));
    assert_eq!(r.feeder.tick(S(10)), Tick::Petted);
    let pets = r.io.pets();
    assert!(op.ask_fence(0, 99, "demote of r0 failed"));
    assert_eq!(r.feeder.tick(S(15)), Tick::Fenced(FenceReason::Operator));
    assert_eq!(r.feeder.tick(S(20)), Tick::Latched);
    assert_eq!(r.io.pets(), pets, "no pet at or after the fence");
    assert_eq!(*r.fence.calls.lock().unwrap(), vec![FenceReason::Operator]);
}

#[test]
fn a_pause_pets_over_an_expired_lease_and_its_end_fences() {
    let (mut r, op) = with_operator(rig(2));
    r.leases.renew(0, S(1000));
    r.leases.renew(1, S(12));
    op.set_pause_until(S(40));
    for t in [10, 15, 20, 25, 30, 35] {
        assert_eq!(r.feeder.tick(S(t)), Tick::Petted, "at {t} s, paused");
    }
    assert_eq!(r.feeder.shared.last_pet(), Some(S(35)));
    assert_eq!(
        r.feeder.tick(S(40)),
        Tick::Fenced(FenceReason::Check { index: 1 }),
        "the pause ended at 40 s and the check still holds no lease"
    );
}

#[test]
fn a_check_that_recovered_during_the_pause_does_not_fence_at_its_end() {
    let (mut r, op) = with_operator(rig(1));
    r.leases.renew(0, S(12));
    op.set_pause_until(S(30));
    assert_eq!(r.feeder.tick(S(15)), Tick::Petted);
    r.leases.renew(0, S(100));
    for t in [20, 25, 30, 35] {
        assert_eq!(r.feeder.tick(S(t)), Tick::Petted, "at {t} s");
    }
}

#[test]
fn the_freeze_guard_fences_during_a_pause() {
    let (mut r, op) = with_operator(rig(1));
    r.leases.renew(0, S(10_000));
    op.set_pause_until(S(3600));
    assert_eq!(r.feeder.tick(S(10)), Tick::Petted);
    assert_eq!(
        r.feeder.tick(S(41)),
        Tick::Fenced(FenceReason::Stall { gap: S(31) })
    );
}

#[test]
fn ticks_with_an_operator_allocate_nothing_pausing_petting_and_fencing() {
    let (r, op) = with_operator(rig(1));
    r.leases.renew(0, S(50));
    op.set_pause_until(S(1000));
    r.io.calls.lock().unwrap().reserve(10_000);
    // The recording fence keeps its calls in a Vec: room for them now.
    r.fence.calls.lock().unwrap().reserve(4);
    let mut feeder = r.feeder;
    let asker = Arc::clone(&op);
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let (petted, allocations) = crate::ffi::alloc_count::allocations(|| {
            // the lease runs out at 50 s, paused until 1000 s; the operator fences at 450 s
            (1..=500u64)
                .filter(|&t| {
                    if t == 450 {
                        asker.ask_fence(0, 1, "test");
                    }
                    feeder.tick(S(t)) == Tick::Petted
                })
                .count()
        });
        let _ = done_tx.send((petted, allocations));
    });
    let (petted, allocations) = done.recv_timeout(S(20)).expect("a tick hung");
    assert_eq!(allocations, 0, "a tick allocated");
    assert_eq!(
        petted, 449,
        "petted through the pause until the operator's fence"
    );
    assert_eq!(*r.fence.calls.lock().unwrap(), vec![FenceReason::Operator]);
}
