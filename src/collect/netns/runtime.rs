//! The names container runtimes keep for a container, read from their own files: pure
//! parsers over those files' text, and a thin reader that finds the files under roots a
//! test can move ([`RuntimeRoots`]).
//!
//! A cgroup path gives a container's id (and, on Kubernetes, its pod's uid), not its name
//! ([`super::cgroup`]). The names are where the runtimes write them:
//!
//! | runtime | file | what it says |
//! | --- | --- | --- |
//! | Docker | `/var/lib/docker/containers/ID/config.v2.json` | `Name` (`"/web-1"`); on Kubernetes through cri-dockerd, the `io.kubernetes.*` labels in `Config.Labels` |
//! | containerd (Kubernetes) | `/run/containerd/io.containerd.runtime.v2.task/NS/ID/config.json` | the OCI bundle's annotations `io.kubernetes.cri.sandbox-namespace`, `…sandbox-name`, `…container-name`, `…container-type` |
//! | CRI-O | `/run/containers/storage/overlay-containers/ID/userdata/config.json` | annotations `io.kubernetes.pod.namespace`, `io.kubernetes.pod.name`, `io.kubernetes.container.name`, `io.kubernetes.cri-o.ContainerType` |
//! | Podman | `/var/lib/containers/storage/overlay-containers/containers.json` | each container's `id` and `names` |
//! | kubelet (any CRI runtime) | `/var/log/pods/NAMESPACE_NAME_UID/CONTAINER/` | the pod's namespace, name and uid, and its containers' names |
//!
//! Where each shape comes from: Docker's from moby's `daemon/container` (the container
//! struct it serialises to `config.v2.json`); the containerd and CRI-O annotation keys from
//! their `annotations` packages (containerd's CRI plugin, CRI-O's `pkg/annotations` and the
//! kubelet's `io.kubernetes.*` label keys); `containers.json` from containers/storage's
//! `Container` type (`id`, `names`, …); the pod log layout from the kubelet's
//! `BuildPodLogsDirectory`. The fixtures in the tests are written in those shapes, with
//! made-up ids.
//!
//! The network namespace of a pod is its sandbox's ("pause"), so a sandbox names the pod
//! but no container: [`Runtimes::describe`] prefers a member process whose container is an
//! application container. Every name here is chosen by whoever runs the container: faces
//! escape it like any name from outside; the model keeps it exact.

use std::path::PathBuf;

use serde::Deserialize;

use super::cgroup;
use crate::model::ContainerInfo;

/// Where the runtimes keep their state; the defaults are the runtimes' own defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeRoots {
    /// Docker's data root: `/var/lib/docker`.
    pub docker: PathBuf,
    /// containerd's state directory: `/run/containerd`.
    pub containerd: PathBuf,
    /// containers/storage's run root (CRI-O, Podman): `/run/containers/storage`.
    pub storage_run: PathBuf,
    /// containers/storage's graph root (Podman, CRI-O): `/var/lib/containers/storage`.
    pub storage: PathBuf,
    /// The kubelet's pod logs: `/var/log/pods`.
    pub pod_logs: PathBuf,
}

impl Default for RuntimeRoots {
    fn default() -> Self {
        RuntimeRoots {
            docker: PathBuf::from("/var/lib/docker"),
            containerd: PathBuf::from("/run/containerd"),
            storage_run: PathBuf::from("/run/containers/storage"),
            storage: PathBuf::from("/var/lib/containers/storage"),
            pod_logs: PathBuf::from("/var/log/pods"),
        }
    }
}

/// What a runtime's file says of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// The container's own name (`web-1`; on Kubernetes, the container's name in the pod).
    pub name: Option<String>,
    /// The pod's name and Kubernetes namespace, on Kubernetes.
    pub pod: Option<String>,
    pub namespace: Option<String>,
    /// A pod's sandbox ("pause") container: it names the pod, not an application.
    pub sandbox: bool,
}

/// Docker's `config.v2.json`.
pub fn parse_docker(text: &str) -> Option<Names> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(rename = "Name")]
        name: Option<String>,
        #[serde(rename = "Config")]
        config: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(rename = "Labels", default)]
        labels: Option<std::collections::HashMap<String, String>>,
    }
    let config: Config = serde_json::from_str(text).ok()?;
    let labels = config.config.and_then(|c| c.labels).unwrap_or_default();
    let label = |key: &str| labels.get(key).filter(|v| !v.is_empty()).cloned();
    if let Some(pod) = label("io.kubernetes.pod.name") {
        return Some(Names {
            name: label("io.kubernetes.container.name").filter(|n| n != "POD"),
            sandbox: label("io.kubernetes.docker.type").as_deref() == Some("podsandbox"),
            pod: Some(pod),
            namespace: label("io.kubernetes.pod.namespace"),
        });
    }
    let name = config.name?;
    let name = name.strip_prefix('/').unwrap_or(&name);
    (!name.is_empty()).then(|| Names {
        name: Some(name.to_owned()),
        ..Names::default()
    })
}

/// The annotations of an OCI bundle's `config.json`, as containerd's CRI plugin and CRI-O
/// write them.
pub fn parse_oci_annotations(text: &str) -> Option<Names> {
    #[derive(Deserialize)]
    struct Spec {
        #[serde(default)]
        annotations: std::collections::HashMap<String, String>,
    }
    let spec: Spec = serde_json::from_str(text).ok()?;
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| spec.annotations.get(*k))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let pod = get(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"])?;
    let kind = get(&[
        "io.kubernetes.cri.container-type",
        "io.kubernetes.cri-o.ContainerType",
    ]);
    let sandbox = kind.as_deref() == Some("sandbox");
    Some(Names {
        name: get(&[
            "io.kubernetes.cri.container-name",
            "io.kubernetes.container.name",
        ])
        // CRI-O names a sandbox's container POD.
        .filter(|n| !sandbox && n != "POD"),
        pod: Some(pod),
        namespace: get(&[
            "io.kubernetes.cri.sandbox-namespace",
            "io.kubernetes.pod.namespace",
        ]),
        sandbox,
    })
}

/// The name containers/storage's `containers.json` gives container `id` (Podman's).
pub fn parse_storage_containers(text: &str, id: &str) -> Option<Names> {
    #[derive(Deserialize)]
    struct Entry {
        id: String,
        #[serde(default)]
        names: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_str(text).ok()?;
    let entry = entries.into_iter().find(|e| e.id == id)?;
    let name = entry.names.into_iter().next()?;
    Some(Names {
        name: Some(name),
        ..Names::default()
    })
}

/// The pod whose uid is `uid`, from the directory names under the kubelet's pod logs:
/// `NAMESPACE_NAME_UID`, then one directory per container. A container is named only when
/// the pod has exactly one: the directories do not say which container holds which id.
pub fn parse_pod_logs<'a>(
    pod_dirs: impl IntoIterator<Item = (&'a str, Vec<String>)>,
    uid: &str,
) -> Option<Names> {
    pod_dirs.into_iter().find_map(|(dir, containers)| {
        let rest = dir.strip_suffix(uid)?.strip_suffix('_')?;
        // Namespaces and pod names are DNS labels and subdomains: no `_` in either.
        let (namespace, pod) = rest.split_once('_')?;
        let only = match containers.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        };
        Some(Names {
            name: only,
            pod: Some(pod.to_owned()),
            namespace: Some(namespace.to_owned()),
            sandbox: false,
        })
    })
}

/// The runtimes' files under `roots`.
#[derive(Debug, Clone, Default)]
pub struct Runtimes {
    pub roots: RuntimeRoots,
}

impl Runtimes {
    /// What the runtime of `container` says of it.
    pub fn names(&self, container: &cgroup::Container) -> Option<Names> {
        let id = container.id.as_str();
        let read = |path: PathBuf| std::fs::read_to_string(path).ok();
        let from_state = match container.runtime {
            "docker" => read(
                self.roots
                    .docker
                    .join("containers")
                    .join(id)
                    .join("config.v2.json"),
            )
            .and_then(|t| parse_docker(&t)),
            "containerd" | "k8s" => self.containerd_bundle(id),
            "cri-o" => read(self.cri_o_config(id)).and_then(|t| parse_oci_annotations(&t)),
            "podman" => read(
                self.roots
                    .storage
                    .join("overlay-containers")
                    .join("containers.json"),
            )
            .and_then(|t| parse_storage_containers(&t, id)),
            _ => None,
        };
        let from_state = from_state.or_else(|| match container.runtime {
            // A cgroupfs-driver pod does not say its runtime: try both.
            "k8s" => read(self.cri_o_config(id)).and_then(|t| parse_oci_annotations(&t)),
            _ => None,
        });
        match (from_state, container.pod_uid.as_deref()) {
            (Some(names), _) if names.pod.is_none() || names.name.is_some() => Some(names),
            (state, Some(uid)) => {
                let logs = self.pod_logs(uid);
                match (state, logs) {
                    (Some(mut state), Some(logs)) => {
                        state.name = state.name.or(logs.name);
                        Some(state)
                    }
                    (state, logs) => state.or(logs),
                }
            }
            (state, None) => state,
        }
    }

    fn cri_o_config(&self, id: &str) -> PathBuf {
        self.roots
            .storage_run
            .join("overlay-containers")
            .join(id)
            .join("userdata/config.json")
    }

    /// containerd keeps a bundle per task under each of its namespaces (`k8s.io` for
    /// Kubernetes, `moby` for Docker).
    fn containerd_bundle(&self, id: &str) -> Option<Names> {
        let tasks = self.roots.containerd.join("io.containerd.runtime.v2.task");
        std::fs::read_dir(tasks).ok()?.flatten().find_map(|ns| {
            let text = std::fs::read_to_string(ns.path().join(id).join("config.json")).ok()?;
            parse_oci_annotations(&text)
        })
    }

    fn pod_logs(&self, uid: &str) -> Option<Names> {
        let dirs = std::fs::read_dir(&self.roots.pod_logs).ok()?;
        let pods: Vec<(String, Vec<String>)> = dirs
            .flatten()
            .filter_map(|d| {
                let name = d.file_name().into_string().ok()?;
                if !name.ends_with(uid) {
                    return None;
                }
                let mut containers: Vec<String> = std::fs::read_dir(d.path())
                    .ok()?
                    .flatten()
                    .filter(|c| c.path().is_dir())
                    .filter_map(|c| c.file_name().into_string().ok())
                    .collect();
                containers.sort();
                Some((name, containers))
            })
            .collect();
        parse_pod_logs(pods.iter().map(|(d, c)| (d.as_str(), c.clone())), uid)
    }

    /// The container that best names a namespace, from its members' containers (oldest
    /// first): the first application container, else the first container at all.
    pub fn describe(&self, containers: &[cgroup::Container]) -> Option<ContainerInfo> {
        let described: Vec<(ContainerInfo, bool)> = containers
            .iter()
            .map(|c| {
                let names = self.names(c).unwrap_or_default();
                let info = ContainerInfo {
                    runtime: c.runtime.to_owned(),
                    id: c.id.clone(),
                    name: names.name,
                    pod: names.pod,
                    namespace: names.namespace,
                };
                (info, names.sandbox)
            })
            .collect();
        let named = |(c, _): &&(ContainerInfo, bool)| c.pod.is_some() || c.name.is_some();
        described
            .iter()
            .find(|(c, sandbox)| !sandbox && c.name.is_some())
            .or_else(|| described.iter().find(named))
            .or_else(|| described.first())
            .map(|(c, _)| c.clone())
    }
}

/// What a person calls the namespace of `container`: `pod default/web-7f9d (nginx)`,
/// `docker web-1`, else the runtime and the short id.
pub fn label(container: &ContainerInfo) -> String {
    match (&container.pod, &container.namespace, &container.name) {
        (Some(pod), namespace, name) => {
            let pod = match namespace {
                Some(ns) => format!("{ns}/{pod}"),
                None => pod.clone(),
            };
            match name {
                Some(name) => format!("pod {pod} ({name})"),
                None => format!("pod {pod}"),
            }
        }
        (None, _, Some(name)) => format!("{} {name}", container.runtime),
        (None, _, None) => format!(
            "{} {}",
            container.runtime,
            container.id.get(..12).unwrap_or(&container.id)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fixtures in the runtimes' own shapes (see the module docs for where each comes from),
    // cut to the keys that matter and a few beside them; the ids and uids are made up.
    const ID: &str = "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970";
    const PAUSE: &str = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d";
    const UID: &str = "0b6e4b4c-5d83-4a4e-9c3c-8a4a8b8f1d2e";

    fn docker_config(name: &str, labels: &str) -> String {
        format!(
            r#"{{"StreamConfig":{{}},"State":{{"Running":true,"Pid":4242}},"ID":"{ID}","Created":"2026-01-05T10:00:00Z","Path":"nginx","Args":["-g","daemon off;"],"Config":{{"Hostname":"4f797c539e6c","Image":"nginx:1.27","Labels":{{{labels}}}}},"Image":"sha256:2b7d6430f78d","Name":"{name}","RestartCount":0,"Driver":"overlay2"}}"#
        )
    }

    fn oci_config(annotations: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.1.0","process":{{"args":["/pause"],"cwd":"/"}},"root":{{"path":"rootfs"}},"hostname":"web-7f9d","annotations":{{{annotations}}},"linux":{{"namespaces":[{{"type":"network","path":"/var/run/netns/cni-1"}}]}}}}"#
        )
    }

    fn containerd_app() -> String {
        oci_config(&format!(
            r#""io.kubernetes.cri.container-name":"nginx","io.kubernetes.cri.container-type":"container","io.kubernetes.cri.image-name":"docker.io/library/nginx:1.27","io.kubernetes.cri.sandbox-id":"{PAUSE}","io.kubernetes.cri.sandbox-name":"web-7f9d","io.kubernetes.cri.sandbox-namespace":"default","io.kubernetes.cri.sandbox-uid":"{UID}""#
        ))
    }

    fn containerd_sandbox() -> String {
        oci_config(&format!(
            r#""io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-id":"{PAUSE}","io.kubernetes.cri.sandbox-log-directory":"/var/log/pods/default_web-7f9d_{UID}","io.kubernetes.cri.sandbox-name":"web-7f9d","io.kubernetes.cri.sandbox-namespace":"default""#
        ))
    }

    fn crio_app() -> String {
        oci_config(&format!(
            r#""io.kubernetes.container.name":"redis","io.kubernetes.cri-o.ContainerType":"container","io.kubernetes.cri-o.SandboxID":"{PAUSE}","io.kubernetes.pod.name":"cache-0","io.kubernetes.pod.namespace":"shop","io.kubernetes.pod.uid":"{UID}""#
        ))
    }

    fn podman_containers() -> String {
        format!(
            r#"[{{"id":"{PAUSE}","names":["other"],"image":"a1b2","layer":"c3d4","metadata":"{{\"image-name\":\"docker.io/library/redis:7\",\"name\":\"other\"}}","created":"2026-01-05T10:00:00Z","flags":{{"MountLabel":""}}}},{{"id":"{ID}","names":["web-1"],"image":"e5f6","layer":"a7b8","metadata":"{{\"image-name\":\"docker.io/library/nginx:1.27\",\"name\":\"web-1\"}}","created":"2026-01-05T10:01:00Z"}}]"#
        )
    }

    fn named(name: &str) -> Names {
        Names {
            name: Some(name.to_owned()),
            ..Names::default()
        }
    }

    #[test]
    fn docker_names_a_container_by_its_name_without_the_slash() {
        assert_eq!(
            parse_docker(&docker_config("/web-1", "")),
            Some(named("web-1"))
        );
        assert_eq!(parse_docker(&docker_config("", "")), None);
        assert_eq!(parse_docker("{not json"), None);
    }

    #[test]
    fn docker_on_kubernetes_names_the_pod_from_its_labels() {
        let labels = r#""io.kubernetes.container.name":"nginx","io.kubernetes.docker.type":"container","io.kubernetes.pod.name":"web-7f9d","io.kubernetes.pod.namespace":"default""#;
        let names = parse_docker(&docker_config("/k8s_nginx_web-7f9d_default_x_0", labels));
        assert_eq!(
            names,
            Some(Names {
                name: Some("nginx".into()),
                pod: Some("web-7f9d".into()),
                namespace: Some("default".into()),
                sandbox: false,
            })
        );
    }

    #[test]
    fn containerd_and_cri_o_annotations_name_the_pod_and_the_container() {
        let app = parse_oci_annotations(&containerd_app()).expect("named");
        assert_eq!(
            (
                app.namespace.as_deref(),
                app.pod.as_deref(),
                app.name.as_deref()
            ),
            (Some("default"), Some("web-7f9d"), Some("nginx"))
        );
        assert!(!app.sandbox);
        let pause = parse_oci_annotations(&containerd_sandbox()).expect("named");
        assert!(pause.sandbox && pause.name.is_none());
        assert_eq!(pause.pod.as_deref(), Some("web-7f9d"));
        let crio = parse_oci_annotations(&crio_app()).expect("named");
        assert_eq!(
            (
                crio.namespace.as_deref(),
                crio.pod.as_deref(),
                crio.name.as_deref()
            ),
            (Some("shop"), Some("cache-0"), Some("redis"))
        );
        // A bundle that no Kubernetes runtime made names no pod.
        assert_eq!(parse_oci_annotations(&oci_config("")), None);
    }

    #[test]
    fn podman_names_come_from_containers_json() {
        assert_eq!(
            parse_storage_containers(&podman_containers(), ID),
            Some(named("web-1"))
        );
        assert_eq!(
            parse_storage_containers(&podman_containers(), &"0".repeat(64)),
            None
        );
        assert_eq!(parse_storage_containers("[]", ID), None);
    }

    #[test]
    fn pod_log_directories_name_the_pod_and_a_lone_container() {
        let dir = format!("default_web-7f9d_{UID}");
        let one = parse_pod_logs([(dir.as_str(), vec!["nginx".to_owned()])], UID).expect("found");
        assert_eq!(
            (
                one.namespace.as_deref(),
                one.pod.as_deref(),
                one.name.as_deref()
            ),
            (Some("default"), Some("web-7f9d"), Some("nginx"))
        );
        let two = vec!["envoy".to_owned(), "nginx".to_owned()];
        let both = parse_pod_logs([(dir.as_str(), two)], UID).expect("found");
        assert_eq!(both.name, None, "which container holds the id is not known");
        assert_eq!(
            parse_pod_logs([(dir.as_str(), Vec::new())], "other-uid"),
            None
        );
    }

    #[test]
    fn labels_say_pod_runtime_name_or_short_id() {
        let mut c = ContainerInfo {
            runtime: "containerd".into(),
            id: ID.into(),
            name: Some("nginx".into()),
            pod: Some("web-7f9d".into()),
            namespace: Some("default".into()),
        };
        assert_eq!(label(&c), "pod default/web-7f9d (nginx)");
        c.name = None;
        assert_eq!(label(&c), "pod default/web-7f9d");
        c = ContainerInfo {
            runtime: "docker".into(),
            id: ID.into(),
            name: Some("web-1".into()),
            pod: None,
            namespace: None,
        };
        assert_eq!(label(&c), "docker web-1");
        c.name = None;
        assert_eq!(label(&c), "docker 4f797c539e6c");
    }

    /// A scratch root laid out as each runtime lays out its files.
    struct Tree(PathBuf);

    impl Tree {
        fn new(tag: &str) -> Tree {
            let root = std::env::temp_dir()
                .join(format!("sockscope-runtimes-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            Tree(root)
        }

        fn write(&self, relative: &str, text: &str) {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }

        fn runtimes(&self) -> Runtimes {
            Runtimes {
                roots: RuntimeRoots {
                    docker: self.0.join("var/lib/docker"),
                    containerd: self.0.join("run/containerd"),
                    storage_run: self.0.join("run/containers/storage"),
                    storage: self.0.join("var/lib/containers/storage"),
                    pod_logs: self.0.join("var/log/pods"),
                },
            }
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn container(cgroup: &str) -> cgroup::Container {
        cgroup::container_of(cgroup).expect("a container")
    }

    #[test]
    fn each_runtime_is_read_where_it_keeps_its_files() {
        let tree = Tree::new("layout");
        tree.write(
            &format!("var/lib/docker/containers/{ID}/config.v2.json"),
            &docker_config("/web-1", ""),
        );
        tree.write(
            &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
            &containerd_app(),
        );
        tree.write(
            &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{PAUSE}/config.json"),
            &containerd_sandbox(),
        );
        tree.write(
            &format!("run/containers/storage/overlay-containers/{ID}/userdata/config.json"),
            &crio_app(),
        );
        tree.write(
            "var/lib/containers/storage/overlay-containers/containers.json",
            &podman_containers(),
        );
        tree.write(
            &format!("var/log/pods/default_web-7f9d_{UID}/nginx/0.log"),
            "",
        );
        let runtimes = tree.runtimes();
        let describe = |cgroups: &[String]| {
            let containers: Vec<_> = cgroups.iter().map(|c| container(c)).collect();
            runtimes.describe(&containers).map(|c| label(&c))
        };

        let docker = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(describe(&[docker]).as_deref(), Some("docker web-1"));

        let pod = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice",
            UID.replace('-', "_")
        );
        // The pause process is the namespace's oldest: the application container names it.
        let containerd = [
            format!("{pod}/cri-containerd-{PAUSE}.scope\n"),
            format!("{pod}/cri-containerd-{ID}.scope\n"),
        ];
        assert_eq!(
            describe(&containerd).as_deref(),
            Some("pod default/web-7f9d (nginx)")
        );
        // The pause container alone still names the pod, and the pod logs its container.
        assert_eq!(
            describe(&containerd[..1]).as_deref(),
            Some("pod default/web-7f9d (nginx)")
        );

        let crio = format!("{pod}/crio-{ID}.scope\n");
        assert_eq!(
            describe(&[crio]).as_deref(),
            Some("pod shop/cache-0 (redis)")
        );

        let podman = format!("0::/machine.slice/libpod-{ID}.scope\n");
        assert_eq!(describe(&[podman]).as_deref(), Some("podman web-1"));

        // A pod that only the kubelet's logs know (cgroupfs driver, runtime state elsewhere).
        let bare = format!("0::/kubepods/besteffort/pod{UID}/{}\n", "a".repeat(64));
        let info = runtimes.describe(&[container(&bare)]).expect("described");
        assert_eq!(info.runtime, "k8s");
        assert_eq!(label(&info), "pod default/web-7f9d (nginx)");

        // Nothing on disk: the runtime and the short id, as before.
        let empty = Tree::new("empty").runtimes();
        let unknown = format!("0::/system.slice/docker-{PAUSE}.scope\n");
        let info = empty.describe(&[container(&unknown)]).expect("described");
        assert_eq!(label(&info), "docker 9ec39b91f3d7");
        assert_eq!((info.name, info.pod), (None, None));
    }
}
