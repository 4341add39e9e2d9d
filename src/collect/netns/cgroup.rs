//! The container a process runs in, from the text of its `/proc/PID/cgroup`: a pure parser.
//!
//! Container runtimes name the cgroup of each container after the container's id, a 64-digit
//! lowercase hex string, in a few well-known shapes:
//!
//! | runtime (cgroup driver) | cgroup path |
//! | --- | --- |
//! | Docker (systemd) | `/system.slice/docker-<id>.scope` |
//! | Docker (cgroupfs) | `/docker/<id>` |
//! | Kubernetes with containerd (systemd) | `/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice/cri-containerd-<id>.scope` |
//! | Kubernetes with CRI-O (systemd) | the same with `crio-<id>.scope` |
//! | Kubernetes (cgroupfs) | `/kubepods/<qos>/pod<uid>/<id>` |
//! | Podman (systemd) | `/machine.slice/libpod-<id>.scope`, or under `user.slice` when rootless |
//! | Podman (cgroupfs) | `/libpod_parent/libpod-<id>` |
//!
//! Podman's monitor runs beside each container in `libpod-conmon-<id>.scope` (CRI-O's in
//! `crio-conmon-<id>.scope`): it is not in the container, so it names none. The innermost
//! component that names a container wins (Docker in Docker nests one inside another). Lines
//! of every hierarchy are read, the cgroup v2 line (`0::/path`) first.

/// A container, as its cgroup path names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The runtime, in the word an operator uses for it: `docker`, `containerd`, `cri-o`,
    /// `podman`, `k8s` (a Kubernetes pod whose runtime the path does not say).
    pub runtime: &'static str,
    /// The full 64-digit id.
    pub id: String,
    /// The uid of the Kubernetes pod the path places it in (`kubepods…pod<uid>…`), with
    /// dashes as the API writes it.
    pub pod_uid: Option<String>,
}

impl Container {
    /// The 12-digit id `docker ps`, `podman ps` and `crictl ps` show.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// What the namespace of this container is called in sockscope's output.
    pub fn label(&self) -> String {
        format!("{} {}", self.runtime, self.short_id())
    }
}

/// The container the text of a `/proc/PID/cgroup` file places the process in, if any.
pub fn container_of(cgroup: &str) -> Option<Container> {
    let paths = cgroup
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let hierarchy = fields.next()?;
            let _controllers = fields.next()?;
            Some((hierarchy == "0", fields.next()?))
        })
        .collect::<Vec<_>>();
    let unified = paths.iter().filter(|(v2, _)| *v2);
    let legacy = paths.iter().filter(|(v2, _)| !*v2);
    unified
        .chain(legacy)
        .find_map(|(_, path)| container_in_path(path))
}

/// The container one cgroup path names: its innermost component that does.
fn container_in_path(path: &str) -> Option<Container> {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    components
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, component)| {
            let name = component.strip_suffix(".scope").unwrap_or(component);
            if name.starts_with("libpod-conmon-") || name.starts_with("crio-conmon-") {
                return None;
            }
            let prefixed = [
                ("docker-", "docker"),
                ("cri-containerd-", "containerd"),
                ("crio-", "cri-o"),
                ("libpod-", "podman"),
            ];
            let (runtime, id) = prefixed
                .iter()
                .find_map(|(prefix, runtime)| Some((*runtime, name.strip_prefix(prefix)?)))
                .unwrap_or_else(|| (bare_runtime(&components[..i]), name));
            is_container_id(id).then(|| Container {
                runtime,
                id: id.to_owned(),
                pod_uid: components[..i].iter().rev().find_map(|c| pod_uid(c)),
            })
        })
}

/// The runtime of a bare id, from the components above it.
fn bare_runtime(ancestors: &[&str]) -> &'static str {
    let has = |word: &str| ancestors.iter().any(|c| c.starts_with(word));
    if has("kubepods") {
        "k8s"
    } else if has("libpod") {
        "podman"
    } else if has("docker") {
        "docker"
    } else {
        "container"
    }
}

/// The pod uid in one component: `kubepods-burstable-pod<uid>.slice` (systemd, dashes
/// written as underscores) or `pod<uid>` (cgroupfs).
fn pod_uid(component: &str) -> Option<String> {
    let name = component.strip_suffix(".slice").unwrap_or(component);
    let at = name.rfind("pod")?;
    let uid = name[at + 3..].replace('_', "-");
    let is_uid = uid.len() == 36
        && uid
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (is_uid && (at == 0 || name[..at].ends_with('-'))).then_some(uid)
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The ids are made up; the paths follow the shapes the runtimes document (see the table
    // in the module docs), as `cat /proc/PID/cgroup` prints them on a cgroup v2 host
    // (`0::/path`) and on a cgroup v1 host (one `N:controllers:/path` line per hierarchy).
    const ID: &str = "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970";
    const ID2: &str = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d";

    fn found(text: &str) -> Option<(&'static str, String)> {
        container_of(text).map(|c| (c.runtime, c.id))
    }

    #[test]
    fn docker_with_the_systemd_driver() {
        let text = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(found(&text), Some(("docker", ID.to_owned())));
        let c = container_of(&text).expect("found");
        assert_eq!(c.short_id(), "4f797c539e6c");
        assert_eq!(c.label(), "docker 4f797c539e6c");
    }

    #[test]
    fn docker_with_the_cgroupfs_driver_on_cgroup_v1() {
        let text = format!(
            "12:pids:/docker/{ID}\n4:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n"
        );
        assert_eq!(found(&text), Some(("docker", ID.to_owned())));
    }

    #[test]
    fn kubernetes_with_containerd_and_cri_o() {
        let pod = "kubepods.slice/kubepods-burstable.slice/\
                   kubepods-burstable-pod0b6e4b4c_5d83_4a4e_9c3c_8a4a8b8f1d2e.slice";
        let containerd = format!("0::/{pod}/cri-containerd-{ID}.scope\n");
        assert_eq!(found(&containerd), Some(("containerd", ID.to_owned())));
        let crio = format!("0::/{pod}/crio-{ID2}.scope\n");
        assert_eq!(found(&crio), Some(("cri-o", ID2.to_owned())));
        let cgroupfs =
            format!("0::/kubepods/besteffort/pod0b6e4b4c-5d83-4a4e-9c3c-8a4a8b8f1d2e/{ID}\n");
        assert_eq!(found(&cgroupfs), Some(("k8s", ID.to_owned())));
        let uid = Some("0b6e4b4c-5d83-4a4e-9c3c-8a4a8b8f1d2e".to_owned());
        for text in [containerd, crio, cgroupfs] {
            assert_eq!(container_of(&text).expect("found").pod_uid, uid, "{text}");
        }
        let docker = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(container_of(&docker).expect("found").pod_uid, None);
    }

    #[test]
    fn podman_rootful_rootless_and_cgroupfs() {
        let rootful = format!("0::/machine.slice/libpod-{ID}.scope\n");
        assert_eq!(found(&rootful), Some(("podman", ID.to_owned())));
        let rootless = format!(
            "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container\n"
        );
        assert_eq!(found(&rootless), Some(("podman", ID.to_owned())));
        let cgroupfs = format!("0::/libpod_parent/libpod-{ID}\n");
        assert_eq!(found(&cgroupfs), Some(("podman", ID.to_owned())));
    }

    #[test]
    fn a_monitor_beside_a_container_is_not_in_it() {
        for text in [
            format!("0::/machine.slice/libpod-conmon-{ID}.scope\n"),
            format!("0::/kubepods.slice/crio-conmon-{ID}.scope\n"),
        ] {
            assert_eq!(found(&text), None, "{text}");
        }
    }

    #[test]
    fn the_innermost_container_wins() {
        let text = format!("0::/system.slice/docker-{ID}.scope/docker/{ID2}\n");
        assert_eq!(found(&text), Some(("docker", ID2.to_owned())));
    }

    #[test]
    fn the_unified_line_is_read_first() {
        let text = format!("3:cpu:/docker/{ID2}\n0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(found(&text), Some(("docker", ID.to_owned())));
    }

    #[test]
    fn host_services_and_near_misses_are_not_containers() {
        let short = &ID[..63];
        let upper = ID.to_uppercase();
        for text in [
            String::new(),
            "0::/\n".to_owned(),
            "0::/init.scope\n".to_owned(),
            "0::/system.slice/sshd.service\n".to_owned(),
            "0::/user.slice/user-1000.slice/session-3.scope\n".to_owned(),
            format!("0::/system.slice/docker-{short}.scope\n"),
            format!("0::/docker/{upper}\n"),
            format!("0::/docker/{ID}0\n"),
            format!("garbage {ID}\n"),
        ] {
            assert_eq!(found(&text), None, "{text:?}");
        }
    }

    #[test]
    fn a_bare_id_outside_known_parents_is_still_a_container() {
        let text = format!("0::/default/{ID}\n");
        assert_eq!(found(&text), Some(("container", ID.to_owned())));
    }
}
