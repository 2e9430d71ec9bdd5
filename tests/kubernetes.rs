//! deploy/kubernetes: what the runtime needs from the manifests, asserted field by field and
//! against the rest of the repository (the unit's capabilities, the config's devices and
//! probe paths, the fence bound's reset time). A schema validator checks the shape when it is
//! installed (`pip install kubernetes-validate`); these tests check the meaning.

mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value;
use util::*;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// Every document of a manifest file.
fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join(file)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn resource(file: &str, kind: &str) -> Value {
    documents(file)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("{file} has no {kind}"))
}

fn daemonset() -> Value {
    resource("daemonset.yaml", "DaemonSet")
}

fn pod() -> Value {
    daemonset()["spec"]["template"]["spec"].clone()
}

fn container() -> Value {
    let pod = pod();
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1, "one container: wdfeed");
    containers[0].clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The config the pods run, from the ConfigMap.
fn config_text() -> String {
    resource("configmap.yaml", "ConfigMap")["data"]["watchdog.yaml"]
        .as_str()
        .expect("the ConfigMap has watchdog.yaml")
        .to_string()
}

fn config() -> Value {
    serde_yaml::from_str(&config_text()).unwrap()
}

/// `(mountPath, readOnly, the hostPath behind it)` of each volume mount.
fn mounts() -> Vec<(String, bool, Option<String>, Value)> {
    let pod = pod();
    let volumes = pod["volumes"].as_sequence().unwrap().clone();
    container()["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| {
            let volume = volumes
                .iter()
                .find(|v| v["name"] == m["name"])
                .unwrap_or_else(|| panic!("no volume for {m:?}"))
                .clone();
            (
                m["mountPath"].as_str().unwrap().to_string(),
                m["readOnly"].as_bool().unwrap_or(false),
                volume["hostPath"]["path"].as_str().map(str::to_string),
                m.clone(),
            )
        })
        .collect()
}

#[test]
fn the_pod_runs_wdfeed_on_the_host_root_with_the_configmap() {
    let c = container();
    let mut argv = strings(&c["command"]);
    argv.extend(strings(&c["args"]));
    assert_eq!(argv[0], "/usr/sbin/wdfeed");
    let root_at = argv.iter().position(|a| a == "--root").expect("--root");
    assert_eq!(argv[root_at + 1], "/host");
    let run_at = argv.iter().position(|a| a == "run").expect("wdfeed run");
    assert!(!argv.contains(&"--dry-run".to_string()));
    let config_at = argv
        .iter()
        .position(|a| a == "--config" || a == "-c")
        .unwrap();
    assert!(config_at > run_at);
    let config_path = Path::new(&argv[config_at + 1]);

    // The config file is the ConfigMap's key, mounted where --config points.
    let (mount, read_only, _, m) = mounts()
        .into_iter()
        .find(|(path, ..)| config_path.starts_with(path))
        .expect("--config points into a mounted volume");
    assert!(read_only);
    let pod = pod();
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == m["name"])
        .unwrap();
    assert_eq!(volume["configMap"]["name"], "wdfeed-config");
    assert_eq!(
        config_path.strip_prefix(&mount).unwrap(),
        Path::new("watchdog.yaml")
    );
    // 0444: a config that others may write can fence the node (wdfeed warns about it).
    assert_eq!(volume["configMap"]["defaultMode"].as_u64(), Some(0o444));
}

#[test]
fn the_host_root_is_mounted_read_only_and_only_the_probes_are_writable() {
    let all = mounts();
    let (_, read_only, host, m) = all
        .iter()
        .find(|(path, ..)| path == "/host")
        .expect("the host's / at /host");
    assert!(*read_only);
    assert_eq!(host.as_deref(), Some("/"));
    assert_eq!(m["recursiveReadOnly"], "IfPossible");
    // recursiveReadOnly requires no propagation.
    assert!(m["mountPropagation"].is_null() || m["mountPropagation"] == "None");

    // Every probe the writable checks open lies under a writable mount of the same host
    // directory; nothing else under /host is writable.
    let cfg = config();
    let mut probes = Vec::new();
    for check in cfg["checks"].as_sequence().unwrap() {
        if check["kind"] != "writable" || check["probe"] == Value::Bool(false) {
            continue;
        }
        for mount in strings(&check["mounts"]) {
            let probe = check["probe-paths"][mount.as_str()]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}/.wdfeed/probe", mount.trim_end_matches('/')));
            probes.push(PathBuf::from(probe));
        }
    }
    assert!(!probes.is_empty(), "the config probes at least one mount");
    let writable_under_host: Vec<_> = all
        .iter()
        .filter(|(path, ro, ..)| !ro && path.starts_with("/host"))
        .collect();
    for probe in &probes {
        let in_pod = Path::new("/host").join(probe.strip_prefix("/").unwrap());
        let (path, _, host, _) = writable_under_host
            .iter()
            .filter(|(path, ..)| in_pod.starts_with(path))
            .max_by_key(|(path, ..)| path.len())
            .unwrap_or_else(|| panic!("probe {} is on the read-only host root", probe.display()));
        let rel = Path::new(path).strip_prefix("/host").unwrap();
        assert_eq!(
            Path::new(host.as_deref().expect("a hostPath")),
            Path::new("/").join(rel),
            "{path} must be the host's own directory, so the probe lands on the host's filesystem"
        );
    }
    for (path, ..) in &writable_under_host {
        assert!(
            probes.iter().any(|p| Path::new("/host")
                .join(p.strip_prefix("/").unwrap())
                .starts_with(path)),
            "{path} is writable but no probe needs it"
        );
    }
}

#[test]
fn the_status_directory_is_the_hosts_run_so_it_outlives_the_pod() {
    let (_, ro, host, _) = mounts()
        .into_iter()
        .find(|(path, ..)| path == "/run/wdfeed")
        .expect("/run/wdfeed mounted");
    assert!(!ro);
    assert_eq!(host.as_deref(), Some("/run/wdfeed"));
}

#[test]
fn the_state_directory_is_the_hosts_persistent_var_lib_wdfeed() {
    let c = container();
    let args = strings(&c["args"]);
    let at = args
        .iter()
        .position(|a| a == "--state-dir")
        .expect("--state-dir: without it the rejoin record dies with the pod");
    let state_dir = &args[at + 1];
    let (_, ro, host, _) = mounts()
        .into_iter()
        .filter(|(path, ..)| Path::new(state_dir).starts_with(path))
        .max_by_key(|(path, ..)| path.len())
        .unwrap_or_else(|| panic!("{state_dir} is on no mount: it would not outlive the pod"));
    assert!(!ro, "{state_dir} must be writable");
    assert_eq!(host.as_deref(), Some("/var/lib/wdfeed"));
}

#[test]
fn host_pids_host_network_and_every_node() {
    let pod = pod();
    assert_eq!(
        pod["hostPID"], true,
        "pidfds and /host/proc must agree on PIDs"
    );
    assert_eq!(
        pod["hostNetwork"], true,
        "fence.isolate acts on the node's interfaces"
    );
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    let tolerations = pod["tolerations"].as_sequence().unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t["operator"] == "Exists" && t["key"].is_null() && t["effect"].is_null()),
        "tolerates every taint: {tolerations:?}"
    );
    let terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"]
        .as_sequence()
        .unwrap();
    assert_eq!(
        terms.len(),
        1,
        "terms are ORed: the exclusion must be in the only one"
    );
    let exclude = terms[0]["matchExpressions"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "wdfeed.io/exclude")
        .expect("the exclusion label");
    assert_eq!(exclude["operator"], "NotIn");
    assert_eq!(strings(&exclude["values"]), ["true"]);
    assert_eq!(pod["automountServiceAccountToken"], false);
}

/// The capabilities of systemd/wdfeed.service's CapabilityBoundingSet=, without `CAP_`.
fn unit_capabilities() -> BTreeSet<String> {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/wdfeed.service"),
    )
    .unwrap();
    unit.lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit bounds its capabilities")
        .split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_string())
        .collect()
}

#[test]
fn capabilities_are_the_units_plus_net_admin_not_privileged() {
    let sc = container()["securityContext"].clone();
    assert_eq!(sc["privileged"], false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    let added: BTreeSet<String> = strings(&sc["capabilities"]["add"]).into_iter().collect();
    let mut expected = unit_capabilities();
    expected.insert("NET_ADMIN".into());
    assert_eq!(added, expected);
    // mlockall needs IPC_LOCK: Kubernetes has no field for RLIMIT_MEMLOCK.
    assert!(added.contains("IPC_LOCK"));
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    // Signals to and ptrace-read of host processes: no default AppArmor profile.
    assert_eq!(sc["appArmorProfile"]["type"], "Unconfined");
}

#[test]
fn the_devices_come_from_the_device_plugin_and_cover_the_config() {
    let c = container();
    assert_eq!(c["resources"]["limits"]["wdfeed.io/watchdog"], "1");
    let plugin = resource("device-plugin.yaml", "DaemonSet");
    let args = strings(&plugin["spec"]["template"]["spec"]["containers"][0]["args"]);
    let domain_at = args.iter().position(|a| a == "--domain").unwrap();
    assert_eq!(args[domain_at + 1], "wdfeed.io");
    let device_at = args.iter().position(|a| a == "--device").unwrap();
    let device: Value = serde_yaml::from_str(&args[device_at + 1]).unwrap();
    assert_eq!(device["name"], "watchdog");
    let groups = device["groups"].as_sequence().unwrap();
    assert_eq!(groups.len(), 1, "one group: every device to the same pod");
    let paths = groups[0]["paths"].as_sequence().unwrap();
    let path = |p: &str| paths.iter().find(|e| e["path"] == p);
    for d in config()["devices"].as_sequence().unwrap() {
        let p = d["path"].as_str().unwrap();
        assert!(path(p).is_some(), "the plugin does not grant {p}");
    }
    let kmsg = path("/dev/kmsg").expect("the fence's kernel log line needs /dev/kmsg");
    assert_ne!(kmsg["optional"], true);
    // Both DaemonSets leave the same nodes out.
    let plugin_terms = &plugin["spec"]["template"]["spec"]["affinity"];
    assert_eq!(plugin_terms, &pod()["affinity"]);
}

/// The longest reset after the last pet the config allows: twice the timeout (iTCO_wdt's
/// two expiries) covers every driver wdfeed knows.
fn worst_reset_seconds(cfg: &Value) -> u64 {
    cfg["devices"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| {
            let t = d["timeout"].as_str().unwrap();
            2 * t.strip_suffix('s').unwrap().parse::<u64>().unwrap()
        })
        .max()
        .unwrap()
}

#[test]
fn a_rolling_update_never_resets_a_node() {
    let ds = daemonset();
    let strategy = &ds["spec"]["updateStrategy"];
    assert_eq!(strategy["type"], "RollingUpdate");
    // The old pod goes first (it holds the device), one node at a time.
    assert_eq!(strategy["rollingUpdate"]["maxSurge"], 0);
    assert_eq!(strategy["rollingUpdate"]["maxUnavailable"], 1);
    let cfg = config();
    // SIGTERM disarms: a new pod that comes late cannot reset the node.
    assert_eq!(cfg["on-exit"], "disarm");
    // A fenced wdfeed ignores SIGTERM and waits for the reset: the kubelet's SIGKILL must
    // come later than the reset, or a restarted wdfeed could pet again.
    let grace = pod()["terminationGracePeriodSeconds"].as_u64().unwrap();
    let reset = worst_reset_seconds(&cfg);
    assert!(
        grace > reset,
        "grace {grace} s must exceed the reset time {reset} s"
    );
    let c = container();
    assert!(
        c["livenessProbe"].is_null(),
        "a liveness probe would have the kubelet restart wdfeed"
    );
    // Readiness = the new pod's own status file: the delay outlasts a file the old pod left
    // behind (wdfeed status calls a file older than three intervals stale).
    let interval = cfg["interval"]
        .as_str()
        .unwrap()
        .strip_suffix('s')
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let probe = &c["readinessProbe"];
    assert_eq!(strings(&probe["exec"]["command"])[1..], ["status"]);
    assert!(probe["initialDelaySeconds"].as_u64().unwrap() > 3 * interval);
}

#[test]
fn the_configmap_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchdog.yaml");
    std::fs::write(&path, config_text()).unwrap();
    let o = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("config looks good"), "{}", stdout(&o));
}

#[test]
fn the_namespace_allows_privileged_pods_and_kustomize_applies_every_manifest() {
    let ns = resource("namespace.yaml", "Namespace");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    for file in ["configmap.yaml", "device-plugin.yaml", "daemonset.yaml"] {
        for d in documents(file) {
            assert_eq!(d["metadata"]["namespace"], "wdfeed", "{file}");
        }
    }
    let kustomization = resource("kustomization.yaml", "Kustomization");
    let listed: BTreeSet<String> = strings(&kustomization["resources"]).into_iter().collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, on_disk);
}

/// The schema, where the validator is installed. It ships the Kubernetes schemas and works
/// offline; 1.30 is the oldest release with every field the DaemonSet sets
/// (recursiveReadOnly, appArmorProfile).
#[test]
fn the_manifests_match_the_kubernetes_schema() {
    let validator = std::env::var("KUBERNETES_VALIDATE").unwrap_or("kubernetes-validate".into());
    let files = [
        "namespace.yaml",
        "configmap.yaml",
        "device-plugin.yaml",
        "daemonset.yaml",
    ];
    for version in ["1.30.0", "1.37.0"] {
        let o = std::process::Command::new(&validator)
            .args(["--strict", "--kubernetes-version", version])
            .args(files.iter().map(|f| dir().join(f)))
            .output();
        let o = match o {
            Ok(o) => o,
            Err(_) => {
                println!(
                    "SKIPPED: {validator} is not installed (pip install kubernetes-validate, or \
                     set KUBERNETES_VALIDATE to its path)"
                );
                return;
            }
        };
        let out = format!("{}{}", stdout(&o), stderr(&o));
        print!("{out}");
        assert!(o.status.success(), "kubernetes {version}: {out}");
        assert_eq!(out.matches(" passed for resource ").count(), 5, "{out}");
    }
}
