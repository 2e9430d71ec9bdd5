//! The feeder's tick that fences in `mode: crashdump`: the whole fence and then the crash
//! step on the feeder's own devices, with every lock another thread takes held by a parked
//! thread, and not one allocation.

use super::*;
use crate::config::FenceMode;
use crate::device::fake::Call;
use crate::fence::crashdump::Sysrq;
use crate::fence::record::{FenceRecord, Found};
use crate::fence::HandoverFile;
use crate::fence::{Crashdump, Fencer, KernelLog, KillList, Plan};
use crate::health::runner::CheckHandle;
use crate::health::LastRun;
use crate::system::Root;

#[test]
fn a_crashdump_fence_retimes_pets_once_and_crashes_without_allocating_or_waiting() {
    let run = tempfile::Builder::new()
        .prefix("wdfeed-crash-")
        .tempdir_in("/dev/shm")
        .unwrap();
    // A fixture root: a crash kernel loaded, and a plain file standing for sysrq-trigger.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("sys/kernel")).unwrap();
    std::fs::create_dir_all(root.path().join("proc")).unwrap();
    std::fs::write(root.path().join("sys/kernel/kexec_crash_loaded"), "1\n").unwrap();
    std::fs::write(root.path().join("proc/sysrq-trigger"), "").unwrap();
    let kmsg = tempfile::NamedTempFile::new().unwrap();

    let schedule = Schedule {
        every: S(1),
        deadline: S(2),
        tolerance: 0,
    };
    let handle = Arc::new(CheckHandle::new("process fakehb".into(), schedule));
    handle.record(LastRun::judge(
        Verdict::unhealthy("fakehb pid 7 stopped (T)"),
        S(20),
        S(20),
        schedule.deadline,
        0,
    ));
    let boot = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    let (record, _) = FenceRecord::open(run.path(), boot).unwrap();
    let handover = Arc::new(HandoverFile::prepare(&run.path().join("handover")).unwrap());
    let crash = Crashdump::new(
        S(60),
        Sysrq::prepare(&Root::at(root.path()), false).unwrap(),
        vec!["/dev/watchdog0".into()],
        false,
    );
    let fencer = Fencer::new(
        Plan {
            mode: FenceMode::Crashdump,
            dry_run: false,
            bound: "66.0".into(),
        },
        Arc::new(KillList::new(vec![], Root::host())),
        KernelLog::to_file(kmsg.reopen().unwrap()),
        vec![Arc::clone(&handle)],
    )
    .with_record(Some(Arc::new(record)))
    .with_handover(Some(Arc::clone(&handover)))
    .with_crashdump(Some(crash))
    .with_wake(Arc::new(Stopper::default()));
    let fencer = Arc::new(fencer);

    let mut r = rig(1);
    r.feeder.fence = Arc::clone(&fencer) as Arc<dyn Fence>;
    r.leases.renew(0, S(22));
    assert_eq!(r.feeder.tick(S(20)), Tick::Petted);
    r.io.calls.lock().unwrap().clear();
    // The fake device records every call: room for them now, so its log does not count.
    r.io.calls.lock().unwrap().reserve(64);

    // Every lock another thread could hold while the feeder fences, held by parked threads.
    let (h, ho) = (Arc::clone(&handle), Arc::clone(&handover));
    let parked = crate::parked::Parked::hold(vec![
        Box::new(move |park| {
            let _g = h.lock_for_test();
            park()
        }),
        Box::new(move |park| {
            let _g = ho.lock_for_test();
            park()
        }),
    ]);

    let (done_tx, done) = mpsc::channel();
    let mut feeder = r.feeder;
    std::thread::spawn(move || {
        let (tick, n) = crate::ffi::alloc_count::allocations(|| feeder.tick(S(25)));
        let _ = done_tx.send((tick, n, feeder));
    });
    let (tick, allocations, feeder) = done
        .recv_timeout(S(20))
        .expect("the crashdump fence waited on a lock another thread holds");
    drop(parked);
    assert_eq!(tick, Tick::Fenced(FenceReason::Check { index: 0 }));
    assert_eq!(allocations, 0, "the crashdump fence allocated");
    assert!(feeder.is_fenced());
    // The device: the crashdump timeout, read back, and one pet; the crash: a `c` written to
    // what stands for /proc/sysrq-trigger.
    assert_eq!(
        r.io.calls(),
        vec![Call::SetTimeout(60), Call::GetTimeout, Call::Keepalive]
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("proc/sysrq-trigger")).unwrap(),
        "c"
    );
    let text = std::fs::read_to_string(kmsg.path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "<2>wdfeed: FENCE check=process fakehb evidence=fakehb pid 7 stopped (T) bound=66.0s mode=crashdump"
    );
    assert_eq!(
        lines[1],
        "<2>wdfeed: CRASHDUMP every device now resets 60s after this pet; crashing into the dump kernel (sysrq c)"
    );
    // The record of this boot came first, as in every mode.
    let (_r, found) = FenceRecord::open(run.path(), boot).unwrap();
    assert!(matches!(found, Found::FencedThisBoot { .. }), "{found:?}");
    // Latched: the next ticks neither pet nor retime.
    let mut feeder = feeder;
    assert_eq!(feeder.tick(S(26)), Tick::Latched);
    assert_eq!(r.io.calls().len(), 3);
}
