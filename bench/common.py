"""Shared by the Python benchmarks in this folder: a private network namespace, a lab
scenario running in it, GNU time for peak RSS, and the release build.

Everything started here is stopped by its pid, never by name."""

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLONE_NEWNET = 0x40000000
MIB = 1024 * 1024


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def release_binaries(build=True):
    """Paths of the release `sockscope` and `lab`, built first unless told not to."""
    if build:
        log("building release binaries and examples ...")
        subprocess.run(["cargo", "build", "--release", "--bins", "--examples"], cwd=ROOT, check=True)
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    release = os.path.join(json.loads(meta.stdout)["target_directory"], "release")
    return os.path.join(release, "sockscope"), os.path.join(release, "examples", "lab")


def stop_on_signals():
    """Ctrl-C, SIGTERM and SIGHUP unwind through the callers' `finally` blocks."""
    def stop(signum, _frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)


class Namespace:
    """A private network namespace held by a `sleep` under `unshare`. As root this process
    enters it itself (setns), so the commands it runs need no wrapper; otherwise each
    command runs under an `nsenter` prefix."""

    def __init__(self, who):
        import ctypes
        for tool in ("unshare", "nsenter", "ip", "ss"):
            if shutil.which(tool) is None:
                sys.exit(f"{who}: `{tool}` is not installed")
        self.root = os.geteuid() == 0
        unshare = ["unshare", "--net", "--"] if self.root else ["unshare", "--map-root-user", "--net", "--"]
        self.holder = subprocess.Popen(
            unshare + ["sh", "-c", "ip link set lo up && echo up && exec sleep infinity"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        if self.holder.stdout.readline().strip() != "up":
            err = self.holder.stderr.read() if self.holder.poll() is not None else ""
            self.close()
            sys.exit(f"{who}: cannot make a network namespace: {err.strip()}")
        pid = self.holder.pid
        self.prefix = []
        if self.root:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    sys.exit(f"{who}: setns: {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
        else:
            self.prefix = ["nsenter", "-U", "-n", "--preserve-credentials", "-t", str(pid), "--"]

    def argv(self, argv):
        return self.prefix + list(argv)

    def close(self):
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()


class Lab:
    """`lab SCENARIO ARGS` inside the namespace: ready once it prints its JSON line; stopped
    by closing its stdin (it then stops its children), killed by pid if it does not stop."""

    def __init__(self, who, ns, lab, scenario, args, timeout):
        self.who = who
        self.proc = subprocess.Popen(
            ns.argv([lab, "--ready-timeout", str(int(timeout)), scenario] + list(args)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout + 10):
            self.close()
            sys.exit(f"{who}: lab {scenario} was not ready within {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            sys.exit(f"{who}: lab {scenario} exited before it was ready (its stderr is above)")
        self.ready = json.loads(line)

    def running(self):
        return self.proc.poll() is None

    def close(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            log(f"{self.who}: the lab did not stop on end of input; killing it")
            self.proc.kill()
            self.proc.wait()


def gnu_time():
    """GNU time, when installed. A process's peak RSS includes the memory of what it was
    forked from, up to its exec; measured through the small `time` process, the figure is
    sockscope's own rather than Python's."""
    path = shutil.which("time") or "/usr/bin/time"
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True)
    except OSError:
        return None
    return path if "GNU" in out.stdout + out.stderr else None


def timed(argv, measurer, scratch, stdout=os.devnull):
    """Run argv with stdout to `stdout`; (seconds, peak RSS in bytes, exit code, CPU seconds
    (user + system), which tell the command's own cost apart from a busy machine's)."""
    if measurer:
        argv = [measurer, "-f", "%U %S %M", "-o", scratch, "--"] + list(argv)
    path = shutil.which(argv[0]) or argv[0]
    actions = [(os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    start = time.perf_counter()
    pid = os.posix_spawn(path, argv, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    peak = usage.ru_maxrss * 1024
    cpu = usage.ru_utime + usage.ru_stime
    if measurer:
        # "Command exited with non-zero status N" may precede the figures.
        with open(scratch) as f:
            user, system, rss = f.read().split()[-3:]
        peak, cpu = int(rss) * 1024, float(user) + float(system)
    return elapsed, peak, os.waitstatus_to_exitcode(status), cpu


def rss_of(pid, field="VmRSS"):
    """Current resident set of a process (VmRSS), or its peak so far (`field="VmHWM"`), in
    bytes; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0
