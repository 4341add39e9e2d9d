//! The label rule over made-up facts; finding, naming, resolving and entering namespaces
//! against this host, with namespaces of our own made by `unshare -n` (where that is not
//! allowed, the tests fail with the reason, unless `SOCKSCOPE_ALLOW_SKIP=1`).

use super::*;
use crate::collect::test_support::{Holder, may_enter_or_skip};
use crate::testing::skip_or_fail;

const ID: NsId = NsId {
    dev: 4,
    ino: 4_026_532_999,
};

/// A Docker container whose name no runtime file gave: the runtime and the short id.
fn container() -> Option<ContainerInfo> {
    Runtimes::default().describe(&[cgroup::container_of(
        "0::/system.slice/docker-4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970.scope\n",
    )?])
}

#[test]
fn labels_prefer_host_then_name_then_container_then_oldest_process() {
    let name = "blue".to_owned();
    let oldest = Some((812, "nginx"));
    assert_eq!(
        choose_label(true, Some(&name), container, oldest, ID),
        "host"
    );
    assert_eq!(
        choose_label(false, Some(&name), container, oldest, ID),
        "blue"
    );
    assert_eq!(
        choose_label(false, None, container, oldest, ID),
        "docker 4f797c539e6c"
    );
    assert_eq!(
        choose_label(false, None, || None, oldest, ID),
        "pid 812 (nginx)"
    );
    assert_eq!(
        choose_label(false, None, || None, None, ID),
        "netns 4026532999"
    );
}

#[test]
fn a_name_is_enough_without_reading_cgroups() {
    let name = "blue".to_owned();
    let label = choose_label(
        false,
        Some(&name),
        || panic!("cgroups read although the namespace has a name"),
        None,
        ID,
    );
    assert_eq!(label, "blue");
}

/// A directory standing in for /run/netns: names are symlinks to namespace files.
struct NamesDir(PathBuf);

impl NamesDir {
    fn new(tag: &str) -> NamesDir {
        let path =
            std::env::temp_dir().join(format!("sockscope-netns-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create names dir");
        NamesDir(path)
    }

    fn name(&self, name: &str, target: &Path) {
        std::os::unix::fs::symlink(target, self.0.join(name)).expect("symlink a name");
    }
}

impl Drop for NamesDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn catalog(names: &NamesDir) -> Catalog {
    let scan = crate::collect::procs::inspect(Path::new("/proc"), 2, None);
    Catalog::new(
        &names.0,
        Path::new("/proc"),
        &RuntimeRoots::default(),
        scan.seen(),
    )
}

#[test]
fn finds_names_and_processes_once_each_and_labels_them() {
    let test = "finds_names_and_processes_once_each_and_labels_them";
    let (Some(blue), Some(unnamed)) = (Holder::start(test), Holder::start(test)) else {
        return;
    };
    let dir = NamesDir::new("find");
    dir.name("sockscope-blue", &blue.ns_path());
    // A second name for the same namespace, and a stray file that names none.
    dir.name("sockscope-azure", &blue.ns_path());
    std::fs::write(dir.0.join("not-a-namespace"), "").expect("write");

    let catalog = catalog(&dir);
    let all = catalog.all();
    let own = all.first().expect("at least our own");
    assert!(own.own, "the caller's namespace comes first");
    assert_eq!(Some(own.id), catalog.own);
    let ids: Vec<NsId> = all.iter().map(|t| t.id).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "each namespace once: {all:?}");

    let named = all
        .iter()
        .find(|t| t.id == blue.id())
        .expect("named one found");
    assert_eq!(named.label, "sockscope-azure", "the first name, sorted");
    assert_eq!(named.paths[0], dir.0.join("sockscope-azure"));
    assert!(named.paths.contains(&blue.ns_path()), "{:?}", named.paths);
    let other = all
        .iter()
        .find(|t| t.id == unnamed.id())
        .expect("unnamed one found");
    assert_eq!(other.label, format!("pid {} (sleep)", unnamed.pid()));
    assert!(!all.iter().any(|t| t.label == "not-a-namespace"));
}

#[test]
fn the_host_is_the_namespace_of_kernel_threads() {
    let names = NamesDir::new("host");
    let catalog = catalog(&names);
    let kthreadd = std::fs::read_to_string("/proc/2/stat").unwrap_or_default();
    let test = "the_host_is_the_namespace_of_kernel_threads";
    let Ok(kernel_ns) = NsId::of_path(Path::new("/proc/2/ns/net")) else {
        skip_or_fail(test, "/proc/2/ns/net is not readable");
        return;
    };
    if !kthreadd.contains("(kthreadd)") {
        skip_or_fail(test, "pid 2 is not kthreadd (a container's pid namespace?)");
        return;
    }
    assert_eq!(catalog.host, Some(kernel_ns));
    assert_eq!(catalog.label(kernel_ns), "host");
}

#[test]
fn resolves_names_paths_and_pids() {
    let test = "resolves_names_paths_and_pids";
    let Some(holder) = Holder::start(test) else {
        return;
    };
    let names = NamesDir::new("resolve");
    names.name("sockscope-green", &holder.ns_path());
    let catalog = catalog(&names);

    for spec in [
        "sockscope-green".to_owned(),
        holder.ns_path().display().to_string(),
        holder.pid().to_string(),
    ] {
        let target = catalog.resolve(&spec).expect("resolves");
        assert_eq!(target.id, holder.id(), "{spec}");
        assert_eq!(target.label, "sockscope-green", "{spec}");
        assert!(!target.own);
    }
    let err = catalog
        .resolve("no-such-namespace")
        .expect_err("unknown name");
    assert!(err.to_string().contains("ip netns list"), "{err}");
    let err = catalog.resolve("/etc/hostname").expect_err("not nsfs");
    assert!(err.to_string().contains("not a namespace file"), "{err}");
    let err = catalog.resolve("4294967295").expect_err("no such pid");
    assert!(err.to_string().contains("/proc/4294967295/ns/net"), "{err}");
}

#[test]
fn work_runs_inside_each_namespace_and_the_caller_stays() {
    let test = "work_runs_inside_each_namespace_and_the_caller_stays";
    let (Some(a), Some(b)) = (Holder::start(test), Holder::start(test)) else {
        return;
    };
    if !may_enter_or_skip(test) {
        return;
    }
    let target = |h: &Holder| Target {
        id: h.id(),
        label: format!("pid {}", h.pid()),
        container: None,
        own: false,
        paths: vec![h.ns_path()],
    };
    let targets = [target(&a), target(&b), target(&a)];
    let before = NsId::of_path(Path::new("/proc/thread-self/ns/net")).expect("own ns");
    let seen = in_each(&targets, 2, |_| {
        NsId::of_path(Path::new("/proc/thread-self/ns/net")).expect("ns inside")
    });
    let seen: Vec<NsId> = seen.into_iter().map(|r| r.expect("entered")).collect();
    assert_eq!(seen, [a.id(), b.id(), a.id()]);
    let after = NsId::of_path(Path::new("/proc/thread-self/ns/net")).expect("own ns");
    assert_eq!(before, after, "the calling thread never moves");
}

#[test]
fn a_namespace_gone_or_replaced_before_it_is_entered_is_gone() {
    let test = "a_namespace_gone_or_replaced_before_it_is_entered_is_gone";
    let Some(holder) = Holder::start(test) else {
        return;
    };
    let Some(other) = Holder::start(test) else {
        return;
    };
    let gone = Target {
        id: holder.id(),
        label: "gone".to_owned(),
        container: None,
        own: false,
        paths: vec![PathBuf::from("/proc/4294967295/ns/net")],
    };
    // The file now names another namespace: a reused pid, a name bound again.
    let replaced = Target {
        paths: vec![other.ns_path()],
        ..gone.clone()
    };
    // The first file is gone, the second still names it.
    let second_chance = Target {
        paths: vec![PathBuf::from("/proc/4294967295/ns/net"), holder.ns_path()],
        ..gone.clone()
    };
    let results = in_each(&[gone, replaced, second_chance], 2, |_| ());
    assert_eq!(results[0], Err(EnterError::Gone));
    assert_eq!(results[1], Err(EnterError::Gone));
    // Entering the namespace through its second path needs the right to enter it.
    if may_enter_or_skip(test) {
        assert_eq!(results[2], Ok(()));
    }
}

#[test]
fn no_targets_no_threads() {
    let results: Vec<Result<(), EnterError>> = in_each(&[], 4, |_| ());
    assert!(results.is_empty());
}
